"""Voice webhook for Twilio or any SIP/VoIP gateway that speaks the TwiML subset.

Each turn: the gateway posts the recognised speech (``SpeechResult``) or keys (``Digits``); we
store and queue it like any message, wait for the bot's reply (pub/sub, bounded by
``voice_reply_timeout_s``) and answer with ``<Say>`` + a new ``<Gather>``. If the reply is slow we
answer "um momento" and ``<Redirect>`` back here with ``after=<seq>`` to pick it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import uuid
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy import select

from assistente_app.api.deps import ResourcesDep
from assistente_app.channels.base import enabled_dependency, settings_dependency
from assistente_app.channels.inbound import InboundText
from assistente_app.channels.ingest import ingest_text
from assistente_app.channels.text import as_speech
from assistente_app.channels.voice import NAME, twiml
from assistente_app.channels.voice.settings import VoiceSettings
from assistente_app.channels.webhooks import (
    ChannelNotConfiguredError,
    InvalidSignatureError,
    read_body,
)
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.conversations.protocol_numbers import spoken
from assistente_app.conversations.schemas import MAX_SEQ
from assistente_app.runtime import Resources

router = APIRouter(
    prefix="/api/v1/channels/voice",
    tags=["channels"],
    dependencies=[Depends(enabled_dependency(NAME))],
)
PATH = "/api/v1/channels/voice/webhook"
XML = "application/xml"
VoiceSettingsDep = Annotated[VoiceSettings, Depends(settings_dependency(VoiceSettings))]


def _action_url(resources: Resources, after: int | None = None) -> str:
    base = resources.settings.public_base_url.rstrip("/") + PATH
    return f"{base}?after={after}" if after is not None else base


def _gather_url(resources: Resources) -> str:
    """Where the gateway posts what it heard, with a nonce per turn: the URL is signed, so two
    turns that heard the same thing ("1", then "1" again) still sign differently."""
    return f"{_action_url(resources)}?turn={secrets.token_hex(6)}"


def _turn_key(call_sid: str, signature: str) -> str:
    """The idempotency key of one heard turn: from the signature (a redelivery of the same
    request signs the same), never from the unsigned ``I-Twilio-Idempotency-Token`` header,
    which anyone on the path could change to store a turn twice."""
    digest = hashlib.sha256(signature.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"voice:{call_sid}:{digest}"


async def _replies(resources: Resources, conversation_id: uuid.UUID, after: int) -> list[m.Message]:
    async with resources.db.write_sessions() as session:
        rows = await session.execute(
            select(m.Message)
            .where(
                m.Message.conversation_id == conversation_id,
                m.Message.seq > after,
                m.Message.role.in_(("bot", "agent", "system")),
            )
            .order_by(m.Message.seq)
        )
        return list(rows.scalars())


async def _wait_for_replies(
    resources: Resources, conversation_id: uuid.UUID, after: int, *, timeout_s: float
) -> list[m.Message]:
    assert resources.hub is not None
    # Subscribe before reading so a reply published in between is not missed.
    async with resources.hub.subscribe(str(conversation_id)) as events:
        found = await _replies(resources, conversation_id, after)
        if found:
            return found
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(events.get(), timeout=timeout_s)
    return await _replies(resources, conversation_id, after)


@router.post("/webhook", response_class=Response, responses={200: {"content": {XML: {}}}})
async def voice_webhook(
    request: Request,
    resources: ResourcesDep,
    settings: VoiceSettingsDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    signature: Annotated[str | None, Header(alias="X-Twilio-Signature")] = None,
) -> Response:
    """Form-encoded call events (``CallSid``, ``From``, ``SpeechResult``/``Digits``) → TwiML."""
    token = settings.voice_auth_token
    if token is None:
        raise ChannelNotConfiguredError("Canal de voz não configurado.")
    body = await read_body(request, resources.settings.max_body_bytes)
    params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    url = resources.settings.public_base_url.rstrip("/") + PATH
    if request.url.query:
        url += "?" + request.url.query
    if not twiml.valid_signature(
        auth_token=token.get_secret_value(), url=url, params=params, header=signature
    ):
        raise InvalidSignatureError("Assinatura X-Twilio-Signature inválida.")
    form = dict(params)
    call_sid = form.get("CallSid", "").strip()
    if not call_sid:
        return Response(twiml.response(twiml.hangup()), media_type=XML, status_code=400)
    heard = (form.get("SpeechResult") or form.get("Digits") or "").strip()

    if heard:
        assert signature is not None  # checked above
        conversation, message = await ingest_text(
            resources=resources,
            channel=NAME,
            inbound=InboundText(
                sender=call_sid, text=heard, idempotency_key=_turn_key(call_sid, signature)
            ),
        )
        after = message.seq if message is not None else after
    else:
        async with resources.db.write_sessions() as session:
            conversation = await conversation_service.conversation_for_sender(
                session=session, settings=resources.settings, channel=NAME, external_id=call_sid
            )
            await session.commit()
        if after is None:
            greeting = (
                "Olá! Você está falando com o assistente digital do tribunal. "
                f"O número do seu protocolo é {spoken(conversation.protocol)}."
            )
            return Response(
                twiml.response(
                    twiml.say(greeting),
                    twiml.gather(action=_gather_url(resources), prompt="Como posso ajudar?"),
                    twiml.say("Não recebi nenhuma resposta. Até logo!"),
                    twiml.hangup(),
                ),
                media_type=XML,
            )

    replies = await _wait_for_replies(
        resources, conversation.id, after or 0, timeout_s=settings.voice_reply_timeout_s
    )
    if not replies:
        return Response(
            twiml.response(
                twiml.say("Um momento, por favor."), twiml.redirect(_action_url(resources, after))
            ),
            media_type=XML,
        )
    verbs = [twiml.say(as_speech(r.text, r.payload)) for r in replies if r.text]
    async with resources.db.read_sessions() as session:
        current = await session.get(m.Conversation, conversation.id)
    target = settings.voice_transfer_target
    if current is not None and current.status == m.QUEUED and target:
        verbs.append(twiml.dial(target))
    else:
        verbs += [
            twiml.gather(action=_gather_url(resources)),
            twiml.say("Não recebi nenhuma resposta. Até logo!"),
            twiml.hangup(),
        ]
    return Response(twiml.response(*verbs), media_type=XML)
