"""Conversation lifecycle over the REST API against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from assistente_app.conversations.protocol_numbers import is_valid_protocol
from assistente_app.core.migrate import upgrade
from assistente_app.worker.handlers import store_bot_turn

from .conftest import Harness, SettingsFactory, running_app


async def test_lifecycle_create_post_reply_history_status(harness: Harness) -> None:
    conversation_id, token, protocol = await harness.open_conversation()
    assert is_valid_protocol(protocol)

    accepted = await harness.post_message(conversation_id, token, "Como emito uma certidão?")
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["protocol"] == protocol
    assert body["status"] == "accepted"

    # Durably stored *and* queued before the 202.
    queue = harness.resources.queues.inbound_for(conversation_id)
    entries = await queue.read_new("probe", count=10, block_ms=None)
    assert [e.fields["message_id"] for e in entries] == [body["id"]]

    # The worker's storage step with a Rasa-shaped answer (text + sources payload).
    replies = await store_bot_turn(
        harness.worker,
        message_id=uuid.UUID(body["id"]),
        items=[
            {"recipient_id": conversation_id, "text": "Acesse o portal. Fonte: Certidões"},
            {
                "recipient_id": conversation_id,
                "custom": {
                    "type": "sources",
                    "sources": [{"title": "Certidões", "path": "docs/certidoes.md"}],
                },
            },
        ],
    )
    assert len(replies) == 1
    history = await harness.history(conversation_id, token)
    roles = [(m["role"], m["text"]) for m in history["messages"]]
    assert roles == [
        ("user", "Como emito uma certidão?"),
        ("bot", "Acesse o portal. Fonte: Certidões"),
    ]
    assert history["messages"][1]["payload"]["sources"][0]["path"] == "docs/certidoes.md"
    assert history["messages"][0]["seq"] < history["messages"][1]["seq"]

    status = await harness.client.get(
        f"/api/v1/protocols/{protocol}", headers={"Authorization": f"Bearer {token}"}
    )
    assert status.status_code == 200
    assert status.json()["status"] == "bot"
    assert status.json()["conversation_id"] == conversation_id


async def test_tokens_are_per_conversation(harness: Harness) -> None:
    first_id, first_token, first_protocol = await harness.open_conversation()
    second_id, second_token, _ = await harness.open_conversation()
    await harness.post_message(first_id, first_token, "mensagem privada")

    missing = await harness.client.get(f"/api/v1/conversations/{first_id}/messages")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "not_authenticated"

    other = await harness.client.get(
        f"/api/v1/conversations/{first_id}/messages",
        headers={"Authorization": f"Bearer {second_token}"},
    )
    assert other.status_code == 403
    assert "mensagem privada" not in other.text

    posted = await harness.post_message(first_id, second_token, "intrusa")
    assert posted.status_code == 403
    status = await harness.client.get(
        f"/api/v1/protocols/{first_protocol}",
        headers={"Authorization": f"Bearer {second_token}"},
    )
    assert status.status_code == 403
    unknown = await harness.client.get(
        f"/api/v1/conversations/{uuid.uuid4()}/messages",
        headers={"Authorization": f"Bearer {first_token}"},
    )
    assert unknown.status_code == 403
    assert (await harness.history(second_id, second_token))["messages"] == []


async def test_protocol_numbers_unique_under_concurrency(harness: Harness) -> None:
    results = await asyncio.gather(*(harness.open_conversation() for _ in range(60)))
    protocols = [protocol for _id, _token, protocol in results]
    assert len(set(protocols)) == 60
    assert all(is_valid_protocol(p) for p in protocols)


async def test_idempotency_key_makes_one_message(harness: Harness) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "abc-1"}
    url = f"/api/v1/conversations/{conversation_id}/messages"
    first, second = await asyncio.gather(
        harness.client.post(url, json={"text": "oi"}, headers=headers),
        harness.client.post(url, json={"text": "oi"}, headers=headers),
    )
    assert {first.status_code, second.status_code} == {202}
    assert first.json()["id"] == second.json()["id"]
    assert sorted([first.json()["duplicate"], second.json()["duplicate"]]) == [False, True]
    assert len((await harness.history(conversation_id, token))["messages"]) == 1


async def test_health_readiness_metrics(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "events": "ok"}
    conversation_id, token, _ = await harness.open_conversation()
    await harness.post_message(conversation_id, token, "olá")
    text = (await harness.client.get("/metrics")).text
    assert "assistente_http_request_duration_seconds_bucket" in text
    assert 'assistente_messages_accepted_total{channel="web"}' in text


async def test_widget_page_is_accessible_html(harness: Harness) -> None:
    page = await harness.client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert '<html lang="pt-BR">' in html
    assert 'role="log"' in html
    assert 'aria-live="polite"' in html
    assert 'class="skip-link"' in html
    assert '<label for="message-input">' in html
    assert 'id="contrast-toggle" aria-pressed="false"' in html
    script = await harness.client.get("/static/widget.js")
    assert script.status_code == 200
    assert "/api/v1/conversations" in script.text


async def test_reads_go_to_the_read_replica_dsn(
    make_settings: SettingsFactory, oidc: Any, postgres_server: Any
) -> None:
    # A second, empty database stands in for a replica that has not caught up: reads routed to
    # it cannot see the conversation, while writes (and their 202) go to the primary.
    replica = str(postgres_server.create_database(f"replica_{uuid.uuid4().hex[:8]}"))
    await asyncio.to_thread(upgrade, replica.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with running_app(make_settings(database_read_url=replica), oidc) as h:
        assert h.resources.db.reader is not h.resources.db.writer
        conversation_id, token, _ = await h.open_conversation()
        assert (await h.post_message(conversation_id, token, "oi")).status_code == 202
        read = await h.client.get(
            f"/api/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert read.status_code == 403
