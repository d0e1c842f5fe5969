"""The tracker store against a real PostgreSQL: the same rows as Rasa's SQL store (which reads them
back), without the count before each save; a primary restart and a promotion waited out instead
of failing the turn."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from assistente_testbed.postgres import PostgresServer
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from stores.tracker_store import FailoverSQLTrackerStore


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def make_store(server: PostgresServer, database: str) -> FailoverSQLTrackerStore:
    server.create_database(database)
    return FailoverSQLTrackerStore(
        domain=Domain.empty(), dialect="postgresql", host=server.host, port=server.port,
        db=database, username=server.user, password=server.password, failover_timeout=30,
    )  # fmt: skip


def turn(text: str) -> list[object]:
    return [UserUttered(text, {"name": "saudacao", "confidence": 1.0}),
            ActionExecuted("utter_saudacao"), BotUttered("Olá!"),
            ActionExecuted("action_listen")]  # fmt: skip


def statements(store: FailoverSQLTrackerStore) -> list[str]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)

    return seen


def stored_events(server: PostgresServer, database: str, sender: str) -> int:
    assert sender.isalpha()  # a test constant, safe inside the literal
    query = f"SELECT count(*) FROM events WHERE sender_id = '{sender}'"  # noqa: S608
    return int(server.execute(query, database=database).strip())


def test_turns_store_each_event_once_without_counting(postgres: PostgresServer) -> None:
    store = make_store(postgres, "tracker_once")
    seen = statements(store)

    async def conversation() -> DialogueStateTracker | None:
        for text in ("oi", "quero ver meu processo", "obrigado"):
            tracker = await store.retrieve("cidada") or DialogueStateTracker("cidada", [])
            for event in turn(text):
                tracker.update(event)
            await store.save(tracker)
        return await store.retrieve("cidada")

    final = asyncio.run(conversation())
    assert final is not None
    assert len(final.events) == 12
    assert stored_events(postgres, "tracker_once", "cidada") == 12
    assert not [s for s in seen if "count(" in s.lower()], "no count query before the saves"
    # Rasa's own SQL store reads exactly what this one wrote (same table, same columns).
    stock = SQLTrackerStore(
        domain=Domain.empty(), dialect="postgresql", host=postgres.host, port=postgres.port,
        db="tracker_once", username=postgres.user, password=postgres.password,
    )  # fmt: skip
    same = asyncio.run(stock.retrieve("cidada"))
    assert same is not None
    assert [e.as_dict() for e in same.events] == [e.as_dict() for e in final.events]
    columns = postgres.execute(
        "SELECT type_name, intent_name, action_name FROM events ORDER BY id LIMIT 2",
        database="tracker_once",
    ).split()
    assert columns == ["user|saudacao|", "action||utter_saudacao"]


def test_a_save_without_a_fresh_read_counts_first(postgres: PostgresServer) -> None:
    store = make_store(postgres, "tracker_count")
    other_replica = make_store(postgres, "tracker_count")

    async def two_replicas() -> None:
        tracker = DialogueStateTracker("cidadao", [])
        for event in turn("oi"):
            tracker.update(event)
        await other_replica.save(tracker)  # never read by `store`
        for event in turn("tchau"):
            tracker.update(event)
        await store.save(tracker)

    asyncio.run(two_replicas())
    assert stored_events(postgres, "tracker_count", "cidadao") == 8


def test_a_primary_restart_is_waited_out(postgres: PostgresServer) -> None:
    store = make_store(postgres, "tracker_restart")
    asyncio.run(store.retrieve("reinicio"))  # a pooled connection to the server we restart
    postgres.stop()
    # Bring it back in 2 s, while the save below is retrying.
    restart = threading.Timer(2.0, postgres.start)
    restart.start()
    try:

        async def save_during_outage() -> None:
            tracker = await store.retrieve("reinicio") or DialogueStateTracker("reinicio", [])
            for event in turn("oi"):
                tracker.update(event)
            await store.save(tracker)

        asyncio.run(save_during_outage())
    finally:
        restart.join()
    assert stored_events(postgres, "tracker_restart", "reinicio") == 4


def test_a_promoted_replica_takes_the_writes() -> None:
    # Synchronous replication: a commit returns once the replica has it, so a crash of the
    # primary loses no acknowledged write (CloudNativePG: minSyncReplicas).
    synchronous = {"synchronous_standby_names": "*"}
    with (
        PostgresServer(fast=False, options=synchronous) as primary,
        PostgresServer(replica_of=primary) as replica,
    ):
        primary.create_database("tracker_ha")
        replica.wait_caught_up()
        sqlalchemy_url = (
            f"postgresql://{primary.user}:{primary.password}@/tracker_ha?"
            f"host={primary.host}:{primary.port}&host={replica.host}:{replica.port}"
            "&target_session_attrs=read-write"
        )
        store = FailoverSQLTrackerStore(
            domain=Domain.empty(), dialect="postgresql", host=sqlalchemy_url, failover_timeout=30
        )

        async def one_turn(sender: str) -> None:
            tracker = await store.retrieve(sender) or DialogueStateTracker(sender, [])
            for event in turn("oi"):
                tracker.update(event)
            await store.save(tracker)

        asyncio.run(one_turn("antes"))
        primary.kill()
        promote = threading.Timer(1.0, replica.promote)
        promote.start()
        try:
            asyncio.run(one_turn("depois"))
        finally:
            promote.join()
        assert stored_events(replica, "tracker_ha", "antes") == 4
        assert stored_events(replica, "tracker_ha", "depois") == 4
