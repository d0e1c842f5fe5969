"""Secrets and personal data stay out of the logs and the dead letters; LGPD erasure reaches
every store that kept the conversation (the app's tables, Rasa's tracker, streams, dead
letters).

The logs are the real JSON lines of ``configure_logging``; the provider is the Telegram fake;
PostgreSQL, Redis and (for erasure) Rasa are real.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from assistente_app.conversations import models as m
from assistente_app.conversations.service import enqueue_delivery
from assistente_app.core.logging import configure_logging
from assistente_app.core.migrate import upgrade
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.queue.streams import Entry
from assistente_app.worker.handlers import (
    handle_outbound,
    on_inbound_dead_letter,
    on_outbound_dead_letter,
    store_bot_turn,
)
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa import RasaStack
from sqlalchemy import select

from .conftest import Harness, SettingsFactory, running_app, wait_for, worker_running
from .test_app_channels import BOT_TOKEN, ProviderFake

NAME = "Maria Aparecida Silva"
CPF_WITH_SPACES = "123 456 789 09"
CNJ_NUMBER = "0058967-77.2016.8.19.0000"
EMAIL = "maria.aparecida@exemplo.com.br"
# What must never be read back, in every form it may take.
RAW = (NAME, CPF_WITH_SPACES, "12345678909", CNJ_NUMBER, "00589677720168190000", EMAIL, BOT_TOKEN)
CITIZEN_TEXT = f"Sou {NAME}, CPF {CPF_WITH_SPACES}, processo {CNJ_NUMBER}, e-mail {EMAIL}."


@pytest.fixture
def telegram() -> Iterator[ProviderFake]:
    fake = ProviderFake()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The process's logging as production configures it, into a buffer (restored after)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, previous in quiet.items():
            logging.getLogger(name).setLevel(previous)


@pytest.fixture
def privacy_database(postgres_server: Any) -> str:
    """A database of its own, with constraints that make PostgreSQL refuse chosen rows: the
    forced errors echo the whole row back (``DETAIL: Failing row contains (...)``)."""
    dsn = str(postgres_server.create_database("assistente_privacy"))
    upgrade(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    postgres_server.execute(
        "ALTER TABLE messages ADD CONSTRAINT forca_erro_bot "
        "CHECK (role <> 'bot' OR text NOT LIKE '%forçar erro%');"
        "ALTER TABLE messages ADD CONSTRAINT forca_erro_api "
        "CHECK (role <> 'user' OR text NOT LIKE '%recusar no banco%')",
        database="assistente_privacy",
    )
    return dsn


async def post_telegram(h: Harness, chat_id: int, text_: str) -> int:
    update = {
        "update_id": uuid.uuid4().int % 10**9,
        "message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}, "text": text_},
    }
    response = await h.client.post(
        "/api/v1/channels/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"},
    )
    return response.status_code


async def test_logs_and_dead_letters_hold_no_secret_and_no_identifier(
    make_settings: SettingsFactory,
    oidc: Any,
    telegram: ProviderFake,
    json_logs: io.StringIO,
    privacy_database: str,
) -> None:
    settings = make_settings(
        database_url=privacy_database,
        telegram_api_base=telegram.url,
        telegram_bot_token=BOT_TOKEN,
        log_level="DEBUG",
    )
    chat_id = 5_000_000 + uuid.uuid4().int % 10**6
    async with running_app(settings, oidc) as h:
        # A citizen writes their name, CPF (with spaces), case number and e-mail; the bot's
        # answer quotes them back and goes out through the Telegram API (URL with the token).
        assert await post_telegram(h, chat_id, CITIZEN_TEXT) == 200
        # The answer to this one cannot be stored (forced database error) and is dead-lettered.
        assert await post_telegram(h, chat_id, f"forçar erro: {CITIZEN_TEXT}") == 200
        # This one is refused by the database at the API (a 500, logged with its traceback).
        assert await post_telegram(h, chat_id, f"recusar no banco {CITIZEN_TEXT}") == 500

        async def rasa_answered(entry: Entry) -> None:
            async with h.worker.db.read_sessions() as session:
                said = await session.scalar(
                    select(m.Message.text).where(
                        m.Message.id == uuid.UUID(entry.fields["message_id"])
                    )
                )
            ids = await store_bot_turn(
                h.worker,
                message_id=uuid.UUID(entry.fields["message_id"]),
                items=[{"recipient_id": "x", "text": f"Recebi: {said}"}],
            )
            await enqueue_delivery(
                queues=h.worker.queues,
                conversation_id=uuid.UUID(entry.fields["conversation_id"]),
                message_ids=ids,
            )

        for queue in h.worker.queues.inbound:
            consumer = StreamConsumer(
                queue,
                rasa_answered,
                consumer="privacidade",
                max_failures=1,
                on_dead_letter=lambda e, r: on_inbound_dead_letter(h.worker, e, r),
            )
            while await consumer.run_once(block_ms=0):
                pass
        telegram.refuse_next = 1  # Telegram refuses the first reply (a dead letter)
        for queue in h.worker.queues.outbound:
            consumer = StreamConsumer(
                queue,
                lambda e: handle_outbound(h.worker, e),
                consumer="privacidade",
                max_failures=1,
                on_dead_letter=lambda e, r: on_outbound_dead_letter(h.worker, e, r),
            )
            while await consumer.run_once(block_ms=0):
                pass

        # The rest went out through the Telegram API (its URL holds the bot token).
        assert [r["path"] for r in telegram.requests] == [f"/bot{BOT_TOKEN}/sendMessage"]
        dead: list[Any] = []
        for queue in h.resources.queues.all():
            entries: Any = await h.resources.redis.xrange(queue.dead_key)
            dead += entries
    assert len(dead) == 2  # the unstorable answer and the refused delivery
    logs = json_logs.getvalue()
    lines = [json.loads(line) for line in logs.splitlines()]
    assert any(line.get("exception") for line in lines)  # the forced errors were logged
    assert "[processo]" in logs or "[cpf]" in logs or "omitido" in logs
    stored = json.dumps(dead, ensure_ascii=False)
    for raw in RAW:
        assert raw not in logs, raw
        assert raw not in stored, raw


async def test_erasure_reaches_every_store(
    make_settings: SettingsFactory,
    oidc: Any,
    rasa_stack: RasaStack,
    postgres_server: PostgresServer,
) -> None:
    tracker_url = postgres_server.dsn_for("rasa_tracker")
    settings = make_settings(rasa_url=rasa_stack.url, rasa_tracker_database_url=tracker_url)
    marker = f"Marcador{uuid.uuid4().hex[:8]}"
    async with running_app(settings, oidc) as h:
        conversation_id, token, protocol = await h.open_conversation()
        async with worker_running(settings):
            posted = await h.post_message(conversation_id, token, f"oi, sou {marker}")
            assert posted.status_code == 202

            async def answered() -> bool:
                messages = (await h.history(conversation_id, token))["messages"]
                return any(x["role"] == "bot" for x in messages)

            await wait_for(answered, within=120)
        # What older releases left behind: a dead letter that kept the text, and an entry
        # still waiting in the stream.
        queue = h.resources.queues.inbound_for(conversation_id)
        await queue.dead_letter(
            Entry(
                queue.key,
                "1-1",
                {"message_id": posted.json()["id"], "conversation_id": conversation_id},
            ),
            f"ValueError: {marker}",
        )
        await queue.add({"message_id": posted.json()["id"], "conversation_id": conversation_id})
        tracker = rasa_stack_events(postgres_server, conversation_id)
        assert tracker > 0  # Rasa did keep the turn

        erased = await h.client.post(
            "/api/v1/admin/lgpd/erasure",
            json={"protocol": protocol},
            headers=oidc.headers("dpo", ("admin",)),
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["rasa_events"] == tracker
        assert erased.json()["queue_entries"] >= 2

        async with h.worker.db.read_sessions() as session:
            left = await session.scalar(select(m.Message.id).where(m.Message.text.contains(marker)))
        assert left is None
        assert rasa_stack_events(postgres_server, conversation_id) == 0
        assert marker not in postgres_server.execute(
            "SELECT coalesce(string_agg(data, ''), '') FROM events", database="rasa_tracker"
        )
        for stream in h.resources.queues.all():
            for key in (stream.key, stream.dead_key):
                entries = json.dumps(await h.resources.redis.xrange(key))
                assert conversation_id not in entries
                assert marker not in entries
        remembered = await h.resources.redis.keys(f"{settings.queue_prefix}:rasa-answer:*")
        assert remembered == []


def rasa_stack_events(postgres_server: PostgresServer, conversation_id: str) -> int:
    # conversation_id is a UUID we made: safe in the literal.
    query = f"SELECT count(*) FROM events WHERE sender_id = '{conversation_id}'"  # noqa: S608
    return int(postgres_server.execute(query, database="rasa_tracker").strip())
