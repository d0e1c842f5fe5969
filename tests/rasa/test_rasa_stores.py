"""Several Rasa replicas share one conversation: tracker store on PostgreSQL, lock store on Redis.

Runs the real Rasa server (two replicas) + action server against the session's real PostgreSQL
and Redis, as configured by rasa/endpoints.yml.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from assistente_testbed.postgres import PostgresServer, find_pg_bin
from assistente_testbed.rasa import RasaStack
from assistente_testbed.rasa_fixtures import RASA_LOCK_REDIS_DB, RASA_TRACKER_DATABASE
from assistente_testbed.redis import RedisServer


@pytest.fixture(scope="module")
def replicas(rasa_stack: RasaStack) -> RasaStack:
    if len(rasa_stack.server_urls) < 2:
        rasa_stack.add_server()
    return rasa_stack


def texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(reply.get("text") or "" for reply in replies)


def stored_user_texts(postgres: PostgresServer, sender: str) -> list[str]:
    """The user messages of one conversation as Rasa's SQLTrackerStore persisted them."""
    query = (
        "SELECT data::json->>'text' FROM events "
        "WHERE sender_id = :'sender' AND type_name = 'user' ORDER BY id;"
    )
    result = subprocess.run(
        [str(find_pg_bin() / "psql"), postgres.dsn_for(RASA_TRACKER_DATABASE), "-tA",
         "-v", f"sender={sender}", "-f", "-"],
        input=query, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return [line for line in result.stdout.splitlines() if line]


def test_conversation_state_moves_between_replicas(
    replicas: RasaStack, postgres_server: PostgresServer
) -> None:
    sender = f"replicas-{uuid.uuid4().hex[:8]}"
    first = replicas.send(sender, "como tiro certidao negativa criminal", server=0)
    assert "knowledge/certidoes.md" in texts(first)
    # The second replica only knows the bot asked "did it help?" if it read the tracker that
    # the first replica wrote to PostgreSQL.
    second = replicas.send(sender, "nao resolveu", server=1)
    assert "Serviços do Portal" in texts(second)
    third = replicas.send(sender, "sim", server=0)
    escalation = [reply["custom"] for reply in third if reply.get("custom")]
    assert escalation == [
        {
            "type": "escalation",
            "team": "servicos_portal",
            "reason": "Assistente não resolveu; cidadão aceitou atendente",
            # The clerk's summary comes from the tracker both replicas share.
            "intent": "servicos_portal",
        }
    ]
    assert stored_user_texts(postgres_server, sender) == [
        "como tiro certidao negativa criminal",
        "nao resolveu",
        "sim",
    ]


@pytest.fixture
def redis_monitor(redis_server: RedisServer) -> Iterator[list[str]]:
    """Every command Redis receives while the test runs (redis-cli MONITOR)."""
    lines: list[str] = []
    monitor = subprocess.Popen(
        ["redis-cli", "-h", redis_server.host, "-p", str(redis_server.port), "MONITOR"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert monitor.stdout is not None
    first_line = monitor.stdout.readline()  # "OK" once MONITOR is active
    assert first_line.strip() == "OK"
    stdout = monitor.stdout
    reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        reader.join(timeout=10)


def test_concurrent_messages_are_serialised_by_the_redis_lock(
    replicas: RasaStack, postgres_server: PostgresServer, redis_monitor: list[str]
) -> None:
    sender = f"lock-{uuid.uuid4().hex[:8]}"
    messages = [f"obrigado {n}" for n in range(6)]
    replies: dict[str, list[dict[str, Any]]] = {}

    def send(n: int) -> None:
        replies[messages[n]] = replicas.send(sender, messages[n], server=n % 2)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(messages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Every message answered once, every message stored once: nothing lost or duplicated
    # although both replicas worked on the same conversation at the same time.
    assert all("Por nada" in texts(replies.get(message, [])) for message in messages), replies
    assert sorted(stored_user_texts(postgres_server, sender)) == sorted(messages)
    # And the replicas coordinated through Redis (db 1, key prefix from endpoints.yml).
    lock_key = f'"assistente:lock:{sender}"'
    lock_writes = [
        line for line in redis_monitor
        if f"[{RASA_LOCK_REDIS_DB} " in line and '"SET"' in line.upper() and lock_key in line
    ]  # fmt: skip
    assert len(lock_writes) >= len(messages)
    # ...through the atomic lock store (stores/redis_lock.py): every ticket change is a
    # WATCH/MULTI/EXEC transaction, so two replicas can never hold the same ticket.
    assert any('"WATCH"' in line.upper() and lock_key in line for line in redis_monitor)
