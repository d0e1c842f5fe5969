"""PostgreSQL and Redis going away, for real: what a court can rely on when a store blinks.

Each test runs its own PostgreSQL or Redis (so stopping it disturbs no other test); Rasa is the
real stack of the session (its tracker lives on the session's PostgreSQL, not the one stopped).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from assistente_app.conversations import models as m
from assistente_app.core.migrate import upgrade
from assistente_app.worker.runner import sweep_once
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer
from sqlalchemy import func, select

from .conftest import Harness, SettingsFactory, running_app, wait_for, worker_running

# The outage the issue asks for: a PostgreSQL restart or failover of about this length.
BLIP_S = 15


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_postgres() -> Iterator[tuple[PostgresServer, str]]:
    server = PostgresServer().start()
    try:
        dsn = server.create_database("assistente_outage")
        upgrade(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
        yield server, dsn
    finally:
        server.remove()


async def user_messages(h: Harness, conversation_id: str) -> list[m.Message]:
    async with h.worker.db.read_sessions() as session:
        rows = await session.execute(
            select(m.Message)
            .where(m.Message.conversation_id == uuid.UUID(conversation_id))
            .order_by(m.Message.seq)
        )
        return list(rows.scalars())


def dead_letters(h: Harness) -> Any:
    async def count() -> int:
        total = 0
        for queue in h.resources.queues.all():
            total += int(await h.resources.redis.xlen(queue.dead_key))
        return total

    return count()


async def test_redis_down_at_accept_time_is_503_and_stores_nothing(
    make_settings: SettingsFactory, oidc: Any, own_redis: RedisServer
) -> None:
    async with running_app(make_settings(redis_url=own_redis.url), oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        own_redis.stop()
        refused = await h.post_message(conversation_id, token, "oi, alguém aí?")
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert refused.json()["error"]["code"] == "service_unavailable"
        opening = await h.client.post("/api/v1/conversations", json={"channel": "web"})
        assert opening.status_code == 503
        assert await user_messages(h, conversation_id) == []  # nothing stored half-way
        assert (await h.client.get("/readyz")).status_code == 503
        own_redis.start()
        accepted = await h.post_message(conversation_id, token, "oi, alguém aí?")
        assert accepted.status_code == 202, accepted.text


async def test_postgres_down_at_accept_time_is_503(
    make_settings: SettingsFactory, oidc: Any, own_postgres: tuple[PostgresServer, str]
) -> None:
    server, dsn = own_postgres
    async with running_app(make_settings(database_url=dsn), oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        server.stop()
        try:
            for response in (
                await h.post_message(conversation_id, token, "oi"),
                await h.client.post("/api/v1/conversations", json={"channel": "web"}),
                await h.client.get(
                    f"/api/v1/conversations/{conversation_id}/messages",
                    headers={"Authorization": f"Bearer {token}"},
                ),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "5"
            assert (await h.client.get("/readyz")).status_code == 503
        finally:
            server.start()
        assert (await h.post_message(conversation_id, token, "oi")).status_code == 202


async def test_xadd_failing_after_commit_then_retry_gives_one_row_and_one_reply(
    make_settings: SettingsFactory, oidc: Any, own_redis: RedisServer, rasa_stack: RasaStack
) -> None:
    """The row is committed, then Redis refuses the XADD (here: an ACL that denies it, so the
    refusal comes exactly between the two). The client is told 503; its retry with the same
    Idempotency-Key is a 202 for the same message, which is answered once."""
    settings = make_settings(
        redis_url=own_redis.url, rasa_url=rasa_stack.url, queue_sweep_after_s=1
    )
    async with running_app(settings, oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "tentativa-1"}
        url = f"/api/v1/conversations/{conversation_id}/messages"
        own_redis.cli("ACL", "SETUSER", "default", "-xadd")
        try:
            first = await h.client.post(url, json={"text": "oi"}, headers=headers)
        finally:
            own_redis.cli("ACL", "SETUSER", "default", "+xadd")
        assert first.status_code == 503, first.text
        assert first.json()["error"]["code"] == "queue_unavailable"
        [stored] = await user_messages(h, conversation_id)
        assert stored.status == m.ACCEPTED  # safe in PostgreSQL, waiting to be queued

        retry = await h.client.post(url, json={"text": "oi"}, headers=headers)
        assert retry.status_code == 202, retry.text
        assert retry.json()["id"] == str(stored.id)
        assert retry.json()["duplicate"] is True

        async with worker_running(settings):

            async def answered() -> list[m.Message]:
                messages = await user_messages(h, conversation_id)
                done = messages[0].status == m.PROCESSED
                return messages if done else []

            await wait_for(answered, within=120)
            await sweep_once(h.worker)  # the sweeper finds nothing lost: no second turn
        messages = await user_messages(h, conversation_id)
        assert [x.role for x in messages].count("user") == 1
        bot_turns = [x for x in messages if x.role == "bot"]
        assert bot_turns, messages
        # One turn: Rasa's answer to "oi" stored once (the greeting may be one or more lines).
        assert len({x.text for x in bot_turns}) == len(bot_turns)
        assert await dead_letters(h) == 0


async def test_postgres_blip_while_processing_loses_and_doubles_nothing(
    make_settings: SettingsFactory,
    oidc: Any,
    own_postgres: tuple[PostgresServer, str],
    rasa_stack: RasaStack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker busy with twenty citizens' messages; PostgreSQL stops for 15 s and comes back.
    Every message ends processed with exactly one bot turn, nothing is dead-lettered and no
    citizen is told that processing failed."""
    server, dsn = own_postgres
    settings = make_settings(
        database_url=dsn, rasa_url=rasa_stack.url, queue_max_failures=2, worker_backoff_max_s=2
    )
    async with running_app(settings, oidc) as h:
        # The control: how many bot lines Rasa answers "oi" with when nothing goes wrong.
        control_id, control_token, _ = await h.open_conversation()
        conversations = [await h.open_conversation() for _ in range(20)]
        async with worker_running(settings):
            assert (await h.post_message(control_id, control_token, "oi")).status_code == 202

            async def control_done() -> list[m.Message]:
                messages = await user_messages(h, control_id)
                return messages if messages[0].status == m.PROCESSED else []

            control = await wait_for(control_done, within=120)
            # (Rasa may pick another wording of the greeting; the number of lines is fixed.)
            expected = len([x for x in control if x.role == "bot"])
            assert expected > 0
            for conversation_id, token, _ in conversations:
                assert (await h.post_message(conversation_id, token, "oi")).status_code == 202
            server.stop()  # while the worker is in the middle of them
            await asyncio.sleep(BLIP_S)
            server.start()

            async def all_processed() -> bool:
                async with h.worker.db.read_sessions() as session:
                    waiting = await session.scalar(
                        select(func.count())
                        .select_from(m.Message)
                        .where(m.Message.role == "user", m.Message.status != m.PROCESSED)
                    )
                return waiting == 0

            await wait_for(all_processed, within=240)
        # The blip did hit work in flight, and it was retried rather than failed.
        assert any("transient failure" in r.getMessage() for r in caplog.records)
        for conversation_id, _, _ in conversations:
            messages = await user_messages(h, conversation_id)
            assert [x.role for x in messages].count("user") == 1
            assert len([x for x in messages if x.role == "bot"]) == expected
            assert not [x for x in messages if x.role == "system"]  # no "processing failed"
        assert await dead_letters(h) == 0


async def test_the_app_speaks_to_a_redis_with_a_password(
    make_settings: SettingsFactory, oidc: Any, own_redis: RedisServer
) -> None:
    """In-cluster Redis has a password now (the operator's security Secret)."""
    own_redis.cli("CONFIG", "SET", "requirepass", "senha-do-redis-123")
    settings = make_settings(redis_url=own_redis.url, redis_password="senha-do-redis-123")
    async with running_app(settings, oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        assert (await h.post_message(conversation_id, token, "oi")).status_code == 202
