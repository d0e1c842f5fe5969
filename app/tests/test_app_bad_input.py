"""Bad input gets the right 4xx with a clear JSON error, and the OpenAPI document is complete."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from assistente_app.channels.telegram.inbound import text_of_update
from assistente_app.channels.whatsapp.inbound import texts_of_notification
from assistente_app.conversations import models as m
from assistente_app.core.errors import TooManyRequestsError
from assistente_app.core.ratelimit import enforce_rate_limit
from fastapi.routing import APIRoute, APIWebSocketRoute
from redis.asyncio import Redis
from sqlalchemy import select

from .conftest import Harness, SettingsFactory, running_app, wait_for


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_oversized_bodies(harness: Harness) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    url = f"/api/v1/conversations/{conversation_id}/messages"
    big = b'{"text": "' + b"a" * 70_000 + b'"}'
    declared = await harness.client.post(
        url, content=big, headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(declared, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * 4096

    streamed = await harness.client.post(
        url, content=chunks(), headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(streamed, 413, "payload_too_large")
    too_long_text = await harness.post_message(conversation_id, token, "a" * 4001)
    assert_error(too_long_text, 422, "validation_error")
    assert (await harness.history(conversation_id, token))["messages"] == []


async def test_malformed_and_invalid_json(harness: Harness) -> None:
    broken = await harness.client.post(
        "/api/v1/conversations",
        content=b'{"channel": "web"',
        headers={"Content-Type": "application/json"},
    )
    assert_error(broken, 400, "malformed_json")
    unknown_channel = await harness.client.post("/api/v1/conversations", json={"channel": "fax"})
    assert_error(unknown_channel, 422, "validation_error")
    assert unknown_channel.json()["error"]["details"][0]["loc"] == ["body", "channel"]
    extra = await harness.client.post("/api/v1/conversations", json={"channel": "web", "x": 1})
    assert_error(extra, 422, "validation_error")
    conversation_id, token, _ = await harness.open_conversation()
    empty = await harness.post_message(conversation_id, token, "")
    assert_error(empty, 422, "validation_error")
    bad_id = await harness.client.get(
        "/api/v1/conversations/not-a-uuid/messages", headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(bad_id, 422, "validation_error")
    bad_protocol = await harness.client.get(
        "/api/v1/protocols/12345", headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(bad_protocol, 400, "invalid_protocol")


async def test_dead_letter_ids_beyond_64_bits_are_not_sent_to_redis(harness: Harness) -> None:
    """Found by the API fuzz run: Redis refused the id itself, a 500."""
    admin = harness.oidc.headers("ops", ("admin",))
    for entry_id in ("00-03066967687001926127463403", "18446744073709551616-0"):
        url = f"/api/v1/admin/queue/dead-letters/{entry_id}/requeue"
        response = await harness.client.post(url, headers=admin)
        assert response.status_code in (404, 422), response.text


async def test_unknown_routes_and_methods(harness: Harness) -> None:
    assert_error(await harness.client.get("/api/v1/nada"), 404, "not_found")
    assert_error(
        await harness.client.post("/api/v1/channels/fax/webhook", json={}), 404, "not_found"
    )
    assert_error(await harness.client.delete("/api/v1/conversations"), 405, "method_not_allowed")


async def assert_webhooks_refuse_payload(harness: Harness, body: bytes) -> None:
    """WhatsApp's and Telegram's webhooks, each with valid authentication, answer ``body``
    with 400 ``malformed_payload``."""
    signature = "sha256=" + hmac.new(b"segredo-do-app", body, hashlib.sha256).hexdigest()
    whatsapp = await harness.client.post(
        "/api/v1/channels/whatsapp/webhook",
        content=body,
        headers={"X-Hub-Signature-256": signature},
    )
    assert_error(whatsapp, 400, "malformed_payload")
    telegram = await harness.client.post(
        "/api/v1/channels/telegram/webhook",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"},
    )
    assert_error(telegram, 400, "malformed_payload")


async def test_channel_webhooks_with_valid_auth_but_broken_payload(harness: Harness) -> None:
    body = b"{not json"
    await assert_webhooks_refuse_payload(harness, body)


async def test_unconfigured_channel_is_404(make_settings: SettingsFactory, oidc: Any) -> None:
    async with running_app(make_settings(telegram_webhook_secret=None), oidc) as h:
        response = await h.client.post("/api/v1/channels/telegram/webhook", json={})
        assert_error(response, 404, "channel_not_configured")


async def test_rate_limits_per_sender(make_settings: SettingsFactory, oidc: Any) -> None:
    settings = make_settings(rate_limit_per_minute=3, conversation_create_per_minute=2)
    async with running_app(settings, oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        other_id, other_token, _ = await h.open_conversation()
        statuses = [
            (await h.post_message(conversation_id, token, f"m{i}")).status_code for i in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        limited = await h.post_message(conversation_id, token, "de novo")
        assert_error(limited, 429, "too_many_requests")
        # A sliding limit (GCRA): 3 a minute frees one slot every 20 s, whatever the clock says.
        assert 0 < int(limited.headers["retry-after"]) <= 20
        # Another sender is not affected.
        assert (await h.post_message(other_id, other_token, "oi")).status_code == 202
        third = await h.client.post("/api/v1/conversations", json={"channel": "web"})
        assert_error(third, 429, "too_many_requests")


async def test_rate_limit_is_sliding_not_a_fixed_window(redis_server: Any) -> None:
    """A fixed window lets a sender spend the limit at the end of one minute and again at the
    start of the next; GCRA allows ``limit`` calls in *any* window-long interval."""
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    prefix = f"t{uuid.uuid4().hex[:8]}"

    async def call() -> None:
        await enforce_rate_limit(
            redis=redis, prefix=prefix, scope="s", sender="a", limit=4, window_s=10
        )

    async def redis_clock() -> float:
        seconds, micros = await redis.time()
        return float(seconds) + micros / 1e6

    try:
        await call()
        # Read after the first call, so `started` is no earlier than the GCRA's own clock for
        # it: the waits below are then at least what they say.
        started = await redis_clock()
        for _ in range(3):
            await call()
        with pytest.raises(TooManyRequestsError) as refused:
            await call()
        # 4 calls per 10 s: a slot frees every 2.5 s after the burst, not at the next window.
        assert refused.value.retry_after_s in (2, 3)

        async def one_slot_free() -> bool:
            # Midway between the slot freed at 2.5 s and the next at 5 s: a second or so of a
            # stalled machine on either side does not change which calls fit.
            return await redis_clock() - started >= 3.75

        await wait_for(one_slot_free, within=10)
        await call()  # exactly one more fits (the next is 2.5 s further)
        with pytest.raises(TooManyRequestsError):
            await call()
    finally:
        await redis.aclose()


async def test_openapi_describes_every_route(harness: Harness) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    paths = document["paths"]
    for route in harness.app.routes:
        if isinstance(route, APIRoute):
            for method in (route.methods or set()) - {"HEAD"}:
                operation = paths[route.path][method.lower()]
                assert operation.get("summary") or operation.get("description"), route.path
        elif isinstance(route, APIWebSocketRoute):
            continue  # OpenAPI 3.1 has no WebSocket object; documented in docs/app.md
    for path in (
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/protocols/{protocol}",
        "/api/v1/channels/whatsapp/webhook",
        "/api/v1/channels/telegram/webhook",
        "/api/v1/channels/voice/webhook",
        "/api/v1/agent/queue",
        "/api/v1/admin/lgpd/erasure",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    post = paths["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert {"202", "401", "403", "429", "503"} <= set(post["responses"])


# --- the malformed-input sweep: each of these once answered 500 --------------------------------


def no_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
    assert not errors, [r.getMessage() for r in errors]


async def test_text_postgresql_cannot_store_is_refused(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    url = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for raw in (b'{"text": "oi\\u0000tudo bem"}', b'{"text": "oi \\ud800"}'):
        response = await harness.client.post(url, content=raw, headers=headers)
        assert_error(response, 422, "validation_error")
    assert (await harness.history(conversation_id, token))["messages"] == []
    no_server_errors(caplog)


async def test_after_beyond_bigint_is_refused(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    for after in (2**63, -1, 10**30):
        response = await harness.client.get(
            f"/api/v1/conversations/{conversation_id}/messages",
            params={"after": str(after)},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert_error(response, 422, "validation_error")
    largest = await harness.client.get(
        f"/api/v1/conversations/{conversation_id}/messages",
        params={"after": str(2**63 - 1)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert largest.status_code == 200
    no_server_errors(caplog)


async def test_non_ascii_secrets_are_wrong_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """``hmac.compare_digest`` raises TypeError on non-ASCII ``str``: a client chose a 500."""
    odd = "segredo-ção".encode()
    telegram = await harness.client.post(
        "/api/v1/channels/telegram/webhook",
        json={"update_id": 1},
        headers={b"X-Telegram-Bot-Api-Secret-Token": odd},
    )
    assert_error(telegram, 401, "invalid_signature")
    whatsapp = await harness.client.post(
        "/api/v1/channels/whatsapp/webhook",
        content=b"{}",
        headers={b"X-Hub-Signature-256": b"sha256=" + odd},
    )
    assert_error(whatsapp, 401, "invalid_signature")
    voice = await harness.client.post(
        "/api/v1/channels/voice/webhook",
        content=b"CallSid=CA1",
        headers={
            b"X-Twilio-Signature": odd,
            b"Content-Type": b"application/x-www-form-urlencoded",
        },
    )
    assert_error(voice, 401, "invalid_signature")
    verify = await harness.client.get(
        "/api/v1/channels/whatsapp/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": "verificação", "hub.challenge": "1"},
    )
    assert_error(verify, 403, "forbidden")
    conversation_id, _, _ = await harness.open_conversation()
    foreign = await harness.client.get(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers={b"Authorization": b"Bearer " + odd},
    )
    assert_error(foreign, 403, "forbidden")
    no_server_errors(caplog)


async def test_deeply_nested_json_is_malformed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"[" * 30_000 + b"]" * 30_000  # under max_body_bytes, over the stack
    await assert_webhooks_refuse_payload(harness, body)
    conversations = await harness.client.post(
        "/api/v1/conversations",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= conversations.status_code < 500, conversations.text
    no_server_errors(caplog)


async def test_provider_texts_are_cleaned_not_refused(harness: Harness) -> None:
    """A provider's message with a NUL or a lone surrogate is stored without them: refusing it
    would make the provider redeliver the whole batch."""
    update = {
        "update_id": 9_000_001,
        "message": {"message_id": 1, "chat": {"id": 4242}, "text": "oi\u0000 \ud800tudo"},
    }
    body = json.dumps(update).encode()
    response = await harness.client.post(
        "/api/v1/channels/telegram/webhook",
        content=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    async with harness.resources.db.read_sessions() as session:
        stored = await session.scalar(
            select(m.Message.text).where(m.Message.idempotency_key == "telegram:9000001")
        )
    assert stored == "oi \ufffdtudo"


def test_provider_payloads_of_any_shape_are_ignored_not_a_500() -> None:
    """Found by the API fuzz run: a list where an object was expected raised AttributeError."""
    odd: list[Any] = [[], "x", 1, None, {"a": []}, [{"b": 1}]]
    for value in odd:
        assert text_of_update({"update_id": 1, "message": value}) is None
        assert text_of_update({"update_id": 1, "message": {"chat": value, "text": "oi"}}) is None
        assert text_of_update({"update_id": value, "message": {"chat": {"id": 1}}}) is None
        assert texts_of_notification({"entry": value}) == []
        assert texts_of_notification({"entry": [{"changes": value}]}) == []
        assert texts_of_notification({"entry": [{"changes": [{"value": value}]}]}) == []
        message = {"type": "text", "from": value, "text": value, "id": value}
        notification = {"entry": [{"changes": [{"value": {"messages": [message]}}]}]}
        assert texts_of_notification(notification) == []
