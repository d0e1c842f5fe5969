"""LGPD: retention job, data-subject export and erasure (admin only), audit trail."""

from __future__ import annotations

import datetime as dt
import uuid

from assistente_app.conversations import models as m
from assistente_app.lgpd.models import LgpdRequest
from assistente_app.lgpd.service import subject_hash
from assistente_app.worker.runner import retention_once
from sqlalchemy import select, update

from .conftest import Harness


async def test_retention_deletes_only_old_conversations(harness: Harness) -> None:
    old_id, old_token, _ = await harness.open_conversation()
    await harness.post_message(old_id, old_token, "conversa antiga")
    new_id, new_token, _ = await harness.open_conversation()
    await harness.post_message(new_id, new_token, "conversa recente")
    async with harness.worker.db.write_sessions() as session:
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == uuid.UUID(old_id))
            .values(last_activity_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=181))
        )
        await session.commit()

    deleted = await retention_once(harness.worker)
    assert deleted is not None
    assert deleted >= 1
    assert await retention_once(harness.worker) is None  # another replica ran it: skip

    gone = await harness.client.get(
        f"/api/v1/conversations/{old_id}/messages",
        headers={"Authorization": f"Bearer {old_token}"},
    )
    assert gone.status_code == 403
    async with harness.worker.db.read_sessions() as session:
        leftovers = await session.scalar(
            select(m.Message.id).where(m.Message.conversation_id == uuid.UUID(old_id))
        )
    assert leftovers is None
    assert len((await harness.history(new_id, new_token))["messages"]) == 1


async def test_export_and_erasure_by_protocol(harness: Harness) -> None:
    conversation_id, token, protocol = await harness.open_conversation()
    await harness.post_message(conversation_id, token, "meu CPF é 123.456.789-09")
    admin = harness.oidc.headers("dpo", ("admin",))
    agent = harness.oidc.headers("agente", ("agent",))

    refused = await harness.client.post(
        "/api/v1/admin/lgpd/export", json={"protocol": protocol}, headers=agent
    )
    assert refused.status_code == 403
    export = await harness.client.post(
        "/api/v1/admin/lgpd/export", json={"protocol": protocol}, headers=admin
    )
    assert export.status_code == 200
    conversations = export.json()["conversations"]
    assert conversations[0]["protocol"] == protocol
    assert conversations[0]["messages"][0]["text"] == "meu CPF é 123.456.789-09"

    incomplete = await harness.client.post(
        "/api/v1/admin/lgpd/erasure", json={"channel": "whatsapp"}, headers=admin
    )
    assert incomplete.status_code == 422
    erased = await harness.client.post(
        "/api/v1/admin/lgpd/erasure", json={"protocol": protocol}, headers=admin
    )
    # Its message was still waiting in the inbound stream (no worker runs here): gone too.
    assert erased.json() == {
        "conversations": 1,
        "messages": 1,
        "rasa_events": 0,
        "queue_entries": 1,
    }
    after = await harness.client.get(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert after.status_code == 403

    async with harness.worker.db.read_sessions() as session:
        audit = list(
            (
                await session.execute(
                    select(LgpdRequest).where(
                        LgpdRequest.subject_hash == subject_hash(protocol, harness.settings)
                    )
                )
            ).scalars()
        )
    assert sorted(a.kind for a in audit) == ["erasure", "export"]
    assert all(a.requested_by == "dpo" for a in audit)
    assert all(protocol not in str(a.result) for a in audit)


async def test_erasure_by_channel_address(harness: Harness) -> None:
    # Two WhatsApp attendances of the same number are both erased.
    wa_id = f"5561{uuid.uuid4().int % 10**9:09d}"
    async with harness.worker.db.write_sessions() as session:
        for _ in range(2):
            session.add(
                m.Conversation(
                    id=uuid.uuid4(),
                    protocol=f"19990101-{uuid.uuid4().int % 10**6:06d}-0",
                    channel="whatsapp",
                    external_id=wa_id,
                    token_hash="x" * 64,
                    status=m.RESOLVED,
                )
            )
        await session.commit()
    admin = harness.oidc.headers("dpo", ("admin",))
    erased = await harness.client.post(
        "/api/v1/admin/lgpd/erasure",
        json={"channel": "whatsapp", "external_id": wa_id},
        headers=admin,
    )
    assert erased.json()["conversations"] == 2
