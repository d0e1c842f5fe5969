"""What the custom resource sets, as the app keeps it: channel switches, anonymisation after
retention, the trusted proxies behind the per-IP limits, migrations that replicas may run at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from assistente_app import migrations
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.lgpd.service import ANONYMIZED_TEXT
from assistente_app.settings import Settings
from assistente_app.worker.runner import retention_once
from assistente_testbed.process import free_port
from assistente_testbed.redis import RedisServer
from pydantic import SecretStr, ValidationError
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import Harness, SettingsFactory, running_app, wait_for


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_switched_off_channels_answer_404_and_send_nothing(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    settings = make_settings(
        telegram_enabled=False,
        mobile_enabled=False,
        telegram_bot_token="123:abc",
        telegram_api_base="http://127.0.0.1:9",  # would fail loudly if anything were sent
    )
    async with running_app(settings, oidc) as h:
        webhook = await h.client.post(
            "/api/v1/channels/telegram/webhook",
            json={"update_id": 1, "message": {"text": "oi", "chat": {"id": 7}}},
            headers={"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"},
        )
        assert_error(webhook, 404, "channel_disabled")
        assert "telegram" in webhook.json()["error"]["message"]
        mobile = await h.client.post("/api/v1/conversations", json={"channel": "mobile"})
        assert_error(mobile, 404, "channel_disabled")
        assert (await h.client.post("/api/v1/conversations", json={"channel": "web"})).is_success
        assert (await h.client.get("/")).status_code == 200

        # A Telegram conversation from before the switch: its replies stay undelivered.
        async with h.worker.db.write_sessions() as session:
            conversation = await conversation_service.conversation_for_sender(
                session=session, settings=h.settings, channel="telegram", external_id="7"
            )
            reply = await conversation_service.add_message(
                session=session, conversation_id=conversation.id, role="agent", text_="Olá"
            )
            await session.commit()
        await conversation_service.enqueue_delivery(
            queues=h.worker.queues, conversation_id=conversation.id, message_ids=[reply.id]
        )
        assert "telegram" not in h.worker.outbound
        assert await h.deliver_outbound() == 1
        for queue in h.worker.queues.outbound:
            assert await queue.pending_count() == 0  # handled, not left to retry
        async with h.worker.db.read_sessions() as session:
            stored = await session.get(m.Message, reply.id)
            assert stored is not None
            assert stored.delivered_at is None


async def test_widget_is_off_with_the_web_channel(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async with running_app(make_settings(web_enabled=False), oidc) as h:
        assert_error(await h.client.get("/"), 404, "channel_disabled")
        opened = await h.client.post("/api/v1/conversations", json={"channel": "web"})
        assert_error(opened, 404, "channel_disabled")
        assert (await h.client.post("/api/v1/conversations", json={"channel": "mobile"})).is_success


async def _age(h: Harness, conversation_id: str, *, days: int, status: str) -> None:
    async with h.worker.db.write_sessions() as session:
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == uuid.UUID(conversation_id))
            .values(
                status=status,
                last_activity_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days),
                escalation_reason="cidadão informou CPF 111.222.333-44",
                agent_sub="clerk-1",
            )
        )
        await session.commit()


async def test_retention_anonymises_closed_conversations(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    settings = make_settings(retention_anonymize_after_days=30, retention_days=180)
    async with running_app(settings, oidc) as h:
        old_id, old_token, old_protocol = await h.open_conversation()
        message = await h.post_message(old_id, old_token, "meu CPF é 111.222.333-44")
        await h.bot_reply(message.json()["id"], "Obrigado.")
        recent_id, recent_token, _ = await h.open_conversation()
        await h.post_message(recent_id, recent_token, "meu nome é Maria")
        queued_id, queued_token, _ = await h.open_conversation()
        await h.post_message(queued_id, queued_token, "quero um atendente")
        await _age(h, old_id, days=40, status=m.RESOLVED)
        await _age(h, recent_id, days=10, status=m.RESOLVED)
        await _age(h, queued_id, days=40, status=m.QUEUED)  # a person still owes an answer

        # The clerk who took it is named in the citizen's history, the case in the summary.
        async with h.worker.db.write_sessions() as session:
            joined = m.Message(
                conversation_id=uuid.UUID(old_id),
                role="system",
                text="Atendente entrou na conversa: Ana Souza.",
                payload={"type": "agent_joined", "agent_name": "Ana Souza"},
            )
            session.add(joined)
            conversation = await session.get(m.Conversation, uuid.UUID(old_id))
            assert conversation is not None
            conversation.summary = {"intent": "consultar_processo", "case_number": "0000832-35"}
            await session.commit()

        assert await retention_once(h.worker) == 0  # nothing is old enough to delete
        old = await h.history(old_id, old_token)
        assert [x["text"] for x in old["messages"]] == [
            ANONYMIZED_TEXT,
            "Obrigado.",
            "Atendente entrou na conversa.",
        ]
        assert old["messages"][-1]["payload"] == {"type": "agent_joined"}
        assert old["protocol"] == old_protocol
        async with h.worker.db.read_sessions() as session:
            rows = {
                str(c.id): c
                for c in (await session.execute(select(m.Conversation))).scalars()
                if str(c.id) in (old_id, recent_id, queued_id)
            }
        assert rows[old_id].anonymized_at is not None
        assert rows[old_id].escalation_reason is None
        assert rows[old_id].agent_sub is None
        assert rows[old_id].summary is None
        assert rows[recent_id].anonymized_at is None
        assert rows[queued_id].anonymized_at is None
        recent = await h.history(recent_id, recent_token)
        assert recent["messages"][0]["text"] == "meu nome é Maria"

        admin = h.oidc.headers("admin-1", ("admin",))
        again = await h.client.post("/api/v1/admin/lgpd/retention", headers=admin)
        assert again.json()["anonymized_conversations"] == 0  # already done: idempotent
        assert again.json()["anonymize_after_days"] == 30


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async def open_as(h: Harness, forwarded_for: str) -> int:
        response = await h.client.post(
            "/api/v1/conversations",
            json={"channel": "web"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return response.status_code

    # The test client connects from 127.0.0.1: here the Ingress, trusted.
    trusted = make_settings(conversation_create_per_minute=1, trusted_proxies="127.0.0.1/32")
    async with running_app(trusted, oidc) as h:
        assert await open_as(h, "203.0.113.5") == 201
        assert await open_as(h, "203.0.113.6") == 201  # another citizen, another bucket
        assert await open_as(h, "203.0.113.5") == 429
        # A client cannot escape its bucket by forging hops to the left of its own address.
        assert await open_as(h, "198.51.100.1, 203.0.113.6") == 429

    untrusted = make_settings(conversation_create_per_minute=1, trusted_proxies="10.0.0.0/8")
    async with running_app(untrusted, oidc) as h:
        assert await open_as(h, "203.0.113.5") == 201
        assert await open_as(h, "203.0.113.6") == 429  # header ignored: one peer, one bucket


def migration_head() -> str:
    head = ScriptDirectory(str(Path(migrations.__file__).parent)).get_current_head()
    assert head is not None
    return head


async def test_replicas_may_migrate_at_once(postgres_server: Any) -> None:
    """Three pods' init containers start together: one migrates, the others wait and find the
    schema current (separate processes, as in a rollout)."""
    dsn = str(postgres_server.create_database(f"migrate_{uuid.uuid4().hex[:8]}"))
    env = {**os.environ, "ASSISTENTE_DATABASE_URL": dsn}
    command = [str(Path(sys.executable).parent / "assistente-api"), "migrate"]
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 120)
    for process, (output, _) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output.decode()
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as connection:
            versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
            assert [row[0] for row in versions] == [migration_head()]
    finally:
        await engine.dispose()


def test_production_refuses_to_start_without_what_it_needs() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production", oidc_jwks_url="https://sso/certs")
    message = str(refused.value)
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "RASA_URL",
        "OIDC_ISSUER",
        "OIDC_AUDIENCE",
        "RASA_TRACKER_DATABASE_URL",  # LGPD erasure must reach Rasa's events
        "LGPD_AUDIT_KEY",  # the audit's hashes must be keyed
    ):
        assert f"ASSISTENTE_{name}" in message
    assert "ASSISTENTE_OIDC_JWKS_URL" not in message
    complete = Settings(
        environment="production",
        database_url="postgresql://u:p@db:5432/a",
        redis_url="redis://redis:6379/0",
        rasa_url="http://nlu:5005",
        oidc_issuer="https://sso/realms/t",
        oidc_audience="assistente-api",
        oidc_jwks_url="https://sso/certs",
        rasa_tracker_database_url="postgresql://rasa:p@db:5432/rasa",
        lgpd_audit_key=SecretStr("chave-da-auditoria"),
    )
    assert complete.environment == "production"


async def test_the_api_starts_before_redis_and_is_ready_once_it_answers(
    make_settings: SettingsFactory, oidc: Any, tmp_path: Path
) -> None:
    """Pods start in any order: an API whose Redis does not answer yet (a Sentinel still
    electing its primary on a fresh deployment) starts, says it is not ready, and serves once
    Redis answers, instead of crashing into a restart back-off."""
    port = free_port()
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0")
    async with running_app(settings, oidc) as early:
        not_ready = await early.client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["redis"].startswith("error")
        with RedisServer(tmp_path / "late-redis", port=port):

            async def ready() -> bool:
                return (await early.client.get("/readyz")).status_code == 200

            await wait_for(ready, within=30)
            await early.open_conversation()
