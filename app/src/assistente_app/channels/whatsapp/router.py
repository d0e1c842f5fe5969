"""WhatsApp Cloud API webhook: GET verification challenge and signed POST notifications."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse

from assistente_app.channels.common import (
    ChannelNotConfiguredError,
    InvalidSignatureError,
    parse_json,
    read_body,
)
from assistente_app.channels.ingest import ingest_text
from assistente_app.channels.whatsapp.client import valid_signature
from assistente_app.core.deps import ResourcesDep
from assistente_app.core.errors import ForbiddenError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/channels/whatsapp", tags=["channels"])


@router.get("/webhook", response_class=PlainTextResponse)
async def whatsapp_verify(
    resources: ResourcesDep,
    mode: Annotated[str, Query(alias="hub.mode")],
    verify_token: Annotated[str, Query(alias="hub.verify_token")],
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)],
) -> str:
    """Meta's subscription check: echo ``hub.challenge`` when the verify token matches."""
    expected = resources.settings.whatsapp_verify_token
    if expected is None:
        raise ChannelNotConfiguredError("Canal WhatsApp não configurado.")
    if mode != "subscribe" or verify_token != expected.get_secret_value():
        raise ForbiddenError("Token de verificação inválido.")
    return challenge


@router.post("/webhook")
async def whatsapp_receive(
    request: Request,
    resources: ResourcesDep,
    signature: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
) -> dict[str, Any]:
    """Notifications from the Cloud API. Text messages are stored and queued; status updates
    and other message types are acknowledged and ignored. Redeliveries (same ``wamid``) are
    recognised and create no second message."""
    secret = resources.settings.whatsapp_app_secret
    if secret is None:
        raise ChannelNotConfiguredError("Canal WhatsApp não configurado.")
    body = await read_body(request, resources.settings.max_body_bytes)
    if not valid_signature(app_secret=secret.get_secret_value(), body=body, header=signature):
        raise InvalidSignatureError("Assinatura X-Hub-Signature-256 inválida.")
    payload = parse_json(body)
    accepted = 0
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            for message in value.get("messages") or []:
                if message.get("type") != "text":
                    log.info("ignored WhatsApp message of type %s", message.get("type"))
                    continue
                text = str((message.get("text") or {}).get("body", "")).strip()
                sender = str(message.get("from", ""))
                if not text or not sender:
                    continue
                _conversation, stored = await ingest_text(
                    resources=resources,
                    channel="whatsapp",
                    sender=sender,
                    text=text,
                    idempotency_key=f"whatsapp:{message['id']}" if message.get("id") else None,
                )
                accepted += stored is not None
    return {"status": "ok", "accepted": accepted}
