"""WhatsApp Cloud API, Telegram Bot API and voice (TwiML) channels. The providers are local
HTTP fakes speaking their documented payloads; our API, PostgreSQL and Redis are real."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from assistente_app.conversations import models as m
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.queue.streams import Entry
from assistente_app.worker.handlers import handle_outbound, on_outbound_dead_letter, store_bot_turn
from assistente_app.worker.runner import sweep_outbound
from assistente_testbed.http_fakes import send_json
from sqlalchemy import func, select

from .conftest import Harness, SettingsFactory, running_app, wait_for

PHONE_ID = "106540352242922"
BOT_TOKEN = "123456:ABC-DEF"


class ProviderFake:
    """Graph API ``POST /{version}/{phone-number-id}/messages`` and Telegram
    ``POST /bot<token>/sendMessage``, answering with the documented response bodies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        self.refuse_next = 0  # answer 400, as the Graph API does for a recipient it refuses
        self.delay_s = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                if fake.fail_next:
                    fake.fail_next -= 1
                    self._reply(503, {"error": {"message": "Service unavailable", "code": 2}})
                    return
                if fake.refuse_next:
                    fake.refuse_next -= 1
                    self._reply(
                        400,
                        {"error": {"message": "(#131030) Recipient not allowed", "code": 131030}},
                    )
                    return
                time.sleep(fake.delay_s)
                fake.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "json": body}
                )
                if "/sendMessage" in self.path:
                    self._reply(
                        200,
                        {
                            "ok": True,
                            "result": {
                                "message_id": len(fake.requests),
                                "from": {"id": 123456, "is_bot": True, "first_name": "Tribunal"},
                                "chat": {"id": body["chat_id"], "type": "private"},
                                "date": 1764000000,
                                "text": body["text"],
                            },
                        },
                    )
                else:
                    self._reply(
                        200,
                        {
                            "messaging_product": "whatsapp",
                            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                            "messages": [{"id": f"wamid.OUT{len(fake.requests)}"}],
                        },
                    )

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                send_json(self, status, payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderFake]:
    fake = ProviderFake()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
async def channels(
    make_settings: SettingsFactory, oidc: Any, provider: ProviderFake
) -> AsyncIterator[Harness]:
    provider.requests.clear()
    provider.delay_s = 0.0
    settings = make_settings(
        whatsapp_api_base=provider.url,
        whatsapp_access_token="EAAG-token",
        whatsapp_phone_number_id=PHONE_ID,
        telegram_api_base=provider.url,
        telegram_bot_token=BOT_TOKEN,
    )
    async with running_app(settings, oidc) as h:
        yield h


def whatsapp_payload(wa_id: str, wamid: str, text: str) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_ID,
                            },
                            "contacts": [{"profile": {"name": "Maria"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": wamid,
                                    "timestamp": "1764000000",
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


APP_SECRET = "segredo-do-app"
VOICE_TOKEN = "token-voz"


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_whatsapp(h: Harness, payload: dict[str, Any], signature: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = signature if signature is not None else sign(body)
    return await h.client.post("/api/v1/channels/whatsapp/webhook", content=body, headers=headers)


async def messages_of(h: Harness, channel: str, external_id: str) -> list[m.Message]:
    async with h.worker.db.read_sessions() as session:
        rows = await session.execute(
            select(m.Message)
            .join(m.Conversation)
            .where(m.Conversation.channel == channel, m.Conversation.external_id == external_id)
            .order_by(m.Message.seq)
        )
        return list(rows.scalars())


async def test_whatsapp_verification_challenge(channels: Harness) -> None:
    ok = await channels.client.get(
        "/api/v1/channels/whatsapp/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": "verifica-123", "hub.challenge": "42"},
    )
    assert ok.status_code == 200
    assert ok.text == "42"
    wrong = await channels.client.get(
        "/api/v1/channels/whatsapp/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "42"},
    )
    assert wrong.status_code == 403


async def test_whatsapp_inbound_duplicates_and_outbound_reply(
    channels: Harness, provider: ProviderFake
) -> None:
    wa_id = f"55619{uuid.uuid4().int % 10**8:08d}"
    payload = whatsapp_payload(wa_id, f"wamid.{uuid.uuid4().hex}", "Qual o andamento?")
    responses = await asyncio.gather(*(post_whatsapp(channels, payload) for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    stored = await messages_of(channels, "whatsapp", wa_id)
    assert [x.text for x in stored] == ["Qual o andamento?"]

    await channels.bot_reply(stored[0].id, "Informe o número do processo.")
    provider.fail_next = 1  # the Graph API hiccups once: retried, not lost, not duplicated
    await channels.deliver_outbound()
    assert provider.fail_next == 0
    assert len(provider.requests) == 1
    sent = provider.requests[0]
    assert sent["path"] == f"/v21.0/{PHONE_ID}/messages"
    assert sent["auth"] == "Bearer EAAG-token"
    assert sent["json"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": wa_id,
        "type": "text",
        "text": {"preview_url": False, "body": "Informe o número do processo."},
    }


async def test_whatsapp_rejects_bad_signatures(channels: Harness) -> None:
    payload = whatsapp_payload("5561999990000", "wamid.bad", "oi")
    forged = await post_whatsapp(channels, payload, signature=sign(b"other body"))
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "invalid_signature"
    missing = await post_whatsapp(channels, payload, signature="")
    assert missing.status_code == 401
    assert await messages_of(channels, "whatsapp", "5561999990000") == []


async def test_whatsapp_status_updates_are_ignored(channels: Harness) -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_ID},
                            "statuses": [
                                {
                                    "id": "wamid.X",
                                    "status": "delivered",
                                    "timestamp": "1",
                                    "recipient_id": "5561999990001",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    response = await post_whatsapp(channels, payload)
    assert response.status_code == 200
    assert response.json()["accepted"] == 0


def telegram_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 10,
            "from": {
                "id": chat_id,
                "is_bot": False,
                "first_name": "João",
                "language_code": "pt-br",
            },
            "chat": {"id": chat_id, "first_name": "João", "type": "private"},
            "date": 1764000000,
            "text": text,
        },
    }


async def test_telegram_secret_duplicates_and_send_message(
    channels: Harness, provider: ProviderFake
) -> None:
    chat_id = uuid.uuid4().int % 10**9
    update = telegram_update(uuid.uuid4().int % 10**9, chat_id, "/start")
    url = "/api/v1/channels/telegram/webhook"
    wrong = await channels.client.post(
        url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "errado"}
    )
    assert wrong.status_code == 401
    missing = await channels.client.post(url, json=update)
    assert missing.status_code == 401
    headers = {"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"}
    for _ in range(2):
        ok = await channels.client.post(url, json=update, headers=headers)
        assert ok.status_code == 200
    stored = await messages_of(channels, "telegram", str(chat_id))
    assert [x.text for x in stored] == ["/start"]

    await channels.bot_reply(stored[0].id, "Olá! Sou o assistente do tribunal.")
    await channels.deliver_outbound()
    assert provider.requests == [
        {
            "path": f"/bot{BOT_TOKEN}/sendMessage",
            "auth": None,
            "json": {"chat_id": str(chat_id), "text": "Olá! Sou o assistente do tribunal."},
        }
    ]


def twilio_signature(url: str, params: dict[str, str], token: str = VOICE_TOKEN) -> str:
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


async def post_voice(h: Harness, params: dict[str, str], signature: str | None = None) -> Any:
    url = h.settings.public_base_url + "/api/v1/channels/voice/webhook"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature or twilio_signature(url, params),
    }
    return await h.client.post(
        "/api/v1/channels/voice/webhook", content=urlencode(params), headers=headers
    )


async def test_voice_call_greets_gathers_and_speaks_the_reply(channels: Harness) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    base = {"CallSid": call_sid, "From": "+5561999990002", "To": "+556130000000"}
    greeting = await post_voice(channels, {**base, "CallStatus": "ringing"})
    assert greeting.status_code == 200
    assert greeting.headers["content-type"].startswith("application/xml")
    twiml = greeting.text
    assert '<Gather input="speech dtmf" language="pt-BR"' in twiml
    assert "protocolo" in twiml

    async def bot_answers() -> None:
        async def stored() -> list[m.Message]:
            return await messages_of(channels, "voice", call_sid)

        user_message = (await wait_for(stored))[0]
        await channels.bot_reply(user_message.id, "Sua audiência é dia 3 & às 14h.")
        await channels.deliver_outbound()

    helper = asyncio.create_task(bot_answers())
    turn = await post_voice(
        channels, {**base, "SpeechResult": "quando é minha audiência", "Confidence": "0.9"}
    )
    await helper
    assert turn.status_code == 200
    assert '<Say language="pt-BR">Sua audiência é dia 3 &amp; às 14h.</Say>' in turn.text
    assert "<Gather" in turn.text


async def test_voice_rejects_forged_signature(channels: Harness) -> None:
    response = await post_voice(channels, {"CallSid": "CAforged"}, signature="Zm9yZ2Vk")
    assert response.status_code == 401
    async with channels.worker.db.read_sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(m.Conversation)
            .where(m.Conversation.external_id == "CAforged")
        )
    assert count == 0


async def test_voice_slow_reply_redirects_then_speaks(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    settings = make_settings(voice_reply_timeout_s=0.2, public_base_url="https://tribunal.example")
    async with running_app(settings, oidc) as h:
        call_sid = f"CA{uuid.uuid4().hex}"
        first = await post_voice(h, {"CallSid": call_sid, "SpeechResult": "segunda via"})
        assert '<Say language="pt-BR">Um momento, por favor.</Say>' in first.text
        assert "https://tribunal.example/api/v1/channels/voice/webhook?after=" in first.text
        redirect = first.text.split('<Redirect method="POST">')[1].split("</Redirect>")[0]
        after = redirect.split("after=")[1]
        stored = await messages_of(h, "voice", call_sid)
        await h.bot_reply(stored[0].id, "Emita a segunda via no portal.")
        await h.deliver_outbound()
        url = h.settings.public_base_url + f"/api/v1/channels/voice/webhook?after={after}"
        params = {"CallSid": call_sid}
        second = await h.client.post(
            f"/api/v1/channels/voice/webhook?after={after}",
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(url, params),
            },
        )
        assert "Emita a segunda via no portal." in second.text
        assert "<Gather" in second.text


async def escalate_stored(h: Harness, message_id: uuid.UUID, team: str = "geral") -> None:
    """What the worker does with Rasa's hand-over (the real Rasa path is in the e2e suite)."""
    await store_bot_turn(
        h.worker,
        message_id=message_id,
        items=[{"custom": {"type": "escalation", "team": team, "reason": "pedido"}}],
    )


async def test_a_clerk_answers_whatsapp_and_telegram_citizens_on_their_channel(
    channels: Harness, provider: ProviderFake
) -> None:
    wa_id = f"55619{uuid.uuid4().int % 10**8:08d}"
    await post_whatsapp(channels, whatsapp_payload(wa_id, f"wamid.{uuid.uuid4().hex}", "atendente"))
    chat_id = uuid.uuid4().int % 10**9
    headers = {"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"}
    await channels.client.post(
        "/api/v1/channels/telegram/webhook",
        json=telegram_update(uuid.uuid4().int % 10**9, chat_id, "quero um atendente"),
        headers=headers,
    )
    clerk = channels.oidc.headers("ana", ("agent", "equipe:geral"))
    for channel, address in (("whatsapp", wa_id), ("telegram", str(chat_id))):
        [first] = await messages_of(channels, channel, address)
        await escalate_stored(channels, first.id)
        claimed = await channels.client.post(
            f"/api/v1/agent/conversations/{first.conversation_id}/claim", headers=clerk
        )
        assert claimed.status_code == 200
        reply = await channels.client.post(
            f"/api/v1/agent/conversations/{first.conversation_id}/messages",
            json={"text": f"Olá pelo {channel}!"},
            headers=clerk,
        )
        assert reply.status_code == 202
    provider.requests.clear()
    await channels.deliver_outbound()
    whatsapp = [r["json"]["text"]["body"] for r in provider.requests if "/messages" in r["path"]]
    telegram = [r["json"]["text"] for r in provider.requests if r["path"].endswith("sendMessage")]
    for sent, channel in ((whatsapp, "whatsapp"), (telegram, "telegram")):
        assert any(text.startswith("Atendente entrou na conversa: ana") for text in sent), sent
        assert sent[-1] == f"Olá pelo {channel}!"
    # While the clerk has it, the citizen's WhatsApp messages wait for the clerk, not the bot.
    await post_whatsapp(channels, whatsapp_payload(wa_id, f"wamid.{uuid.uuid4().hex}", "ok!"))
    assert (await messages_of(channels, "whatsapp", wa_id))[-1].status == m.FOR_AGENT


async def test_a_waiting_whatsapp_citizen_leaves_the_queue_by_writing_sair(
    channels: Harness, provider: ProviderFake
) -> None:
    wa_id = f"55619{uuid.uuid4().int % 10**8:08d}"
    await post_whatsapp(channels, whatsapp_payload(wa_id, f"wamid.{uuid.uuid4().hex}", "humano"))
    [first] = await messages_of(channels, "whatsapp", wa_id)
    await escalate_stored(channels, first.id)
    await post_whatsapp(channels, whatsapp_payload(wa_id, f"wamid.{uuid.uuid4().hex}", "sair"))
    provider.requests.clear()
    await channels.deliver_outbound()
    bodies = [r["json"]["text"]["body"] for r in provider.requests]
    assert any("Você saiu da fila" in body for body in bodies), bodies
    async with channels.worker.db.read_sessions() as session:
        conversation = await session.get(m.Conversation, first.conversation_id)
    assert conversation is not None
    assert conversation.resolution_code == "desistencia"


async def test_refused_replies_are_dead_lettered_not_lost_or_retried_forever(
    channels: Harness, provider: ProviderFake
) -> None:
    """A WhatsApp 4xx used to lose the reply silently; now it becomes a dead letter, the reply
    is marked failed (visible in the history), and the sweeper does not send it again."""
    wa_id = f"55619{uuid.uuid4().int % 10**8:08d}"
    await post_whatsapp(channels, whatsapp_payload(wa_id, f"wamid.{uuid.uuid4().hex}", "oi"))
    stored = await messages_of(channels, "whatsapp", wa_id)
    [reply_id] = await channels.bot_reply(stored[0].id, "Olá!")
    provider.refuse_next = 10
    queue = channels.worker.queues.outbound_for(str(stored[0].conversation_id))
    consumer = StreamConsumer(
        queue,
        lambda e: handle_outbound(channels.worker, e),
        consumer="test",
        max_failures=1,
        on_dead_letter=lambda e, r: on_outbound_dead_letter(channels.worker, e, r),
    )
    await queue.ensure_group()
    await consumer.run_once(block_ms=0)
    provider.refuse_next = 0
    dead: Any = await channels.resources.redis.xrange(queue.dead_key)
    assert len(dead) == 1
    assert "EAAG-token" not in json.dumps(dead)
    async with channels.worker.db.read_sessions() as session:
        reply = await session.get(m.Message, reply_id)
    assert reply is not None
    assert reply.status == m.FAILED
    assert reply.delivered_at is None
    channels.worker.settings.queue_sweep_after_s = 0  # every undelivered reply is "old" now
    await sweep_outbound(channels.worker)
    assert str(reply_id) not in await queue.values_of("message_ids")
    assert provider.requests == []


async def test_a_reply_named_twice_is_sent_once(channels: Harness, provider: ProviderFake) -> None:
    """Two outbound entries naming the same reply (a reclaim, a sweep) handled at once by two
    workers: the per-conversation delivery lock lets one send it; the other finds it sent."""
    chat_id = 7_000_000 + uuid.uuid4().int % 10**6
    update = {"update_id": uuid.uuid4().int % 10**9, "message": {"chat": {"id": chat_id}}}
    update["message"]["text"] = "oi"  # type: ignore[index]
    await channels.client.post(
        "/api/v1/channels/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": "segredo-telegram"},
    )
    stored = await messages_of(channels, "telegram", str(chat_id))
    [reply_id] = await channels.bot_reply(stored[0].id, "Olá, uma vez só.")
    conversation_id = str(stored[0].conversation_id)
    entry = Entry("s", "1-0", {"conversation_id": conversation_id, "message_ids": str(reply_id)})
    provider.delay_s = 0.5  # both workers are inside the send at the same time
    await asyncio.gather(
        handle_outbound(channels.worker, entry), handle_outbound(channels.worker, entry)
    )
    sent = [r for r in provider.requests if r["json"].get("chat_id") == str(chat_id)]
    assert len(sent) == 1


async def test_voice_turns_are_keyed_by_their_signature(channels: Harness) -> None:
    """The unsigned I-Twilio-Idempotency-Token header decides nothing: a replay with another
    value stores nothing twice, and the same digit heard in two turns is two messages (each
    Gather's action URL carries its own nonce, which the signature covers)."""
    call_sid = f"CA{uuid.uuid4().hex}"
    base_url = channels.settings.public_base_url + "/api/v1/channels/voice/webhook"
    greeting = await post_voice(channels, {"CallSid": call_sid})
    action = greeting.text.split('action="')[1].split('"')[0]
    assert action.startswith(base_url + "?turn=")
    params = {"CallSid": call_sid, "Digits": "1"}

    async def post_turn(url: str, token: str) -> None:
        path = url.removeprefix(channels.settings.public_base_url)
        await channels.client.post(
            path,
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(url, params),
                "I-Twilio-Idempotency-Token": token,
            },
        )

    channels.settings.voice_reply_timeout_s = 0.05
    await post_turn(action, "a")
    await post_turn(action, "b")  # the same signed request, another header value
    assert [x.text for x in await messages_of(channels, "voice", call_sid)] == ["1"]
    await post_turn(base_url + "?turn=outro", "a")  # the next turn heard "1" again
    assert [x.text for x in await messages_of(channels, "voice", call_sid)] == ["1", "1"]
