"""WhatsApp Cloud API webhook: GET verification challenge and signed POST notifications."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse

from assistente_app.api.deps import ResourcesDep
from assistente_app.channels.base import enabled_dependency, settings_dependency
from assistente_app.channels.ingest import ingest_text
from assistente_app.channels.webhooks import (
    ChannelNotConfiguredError,
    InvalidSignatureError,
    parse_json,
    read_body,
)
from assistente_app.channels.whatsapp import NAME
from assistente_app.channels.whatsapp.client import valid_signature
from assistente_app.channels.whatsapp.inbound import texts_of_notification
from assistente_app.channels.whatsapp.settings import WhatsAppSettings
from assistente_app.core.errors import ForbiddenError
from assistente_app.core.security import constant_time_equals

router = APIRouter(
    prefix="/api/v1/channels/whatsapp",
    tags=["channels"],
    dependencies=[Depends(enabled_dependency(NAME))],
)
WhatsAppSettingsDep = Annotated[WhatsAppSettings, Depends(settings_dependency(WhatsAppSettings))]


@router.get("/webhook", response_class=PlainTextResponse)
async def whatsapp_verify(
    settings: WhatsAppSettingsDep,
    mode: Annotated[str, Query(alias="hub.mode")],
    verify_token: Annotated[str, Query(alias="hub.verify_token")],
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)],
) -> str:
    """Meta's subscription check: echo ``hub.challenge`` when the verify token matches."""
    expected = settings.whatsapp_verify_token
    if expected is None:
        raise ChannelNotConfiguredError("Canal WhatsApp não configurado.")
    if mode != "subscribe" or not constant_time_equals(verify_token, expected.get_secret_value()):
        raise ForbiddenError("Token de verificação inválido.")
    return challenge


@router.post("/webhook")
async def whatsapp_receive(
    request: Request,
    resources: ResourcesDep,
    settings: WhatsAppSettingsDep,
    signature: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
) -> dict[str, Any]:
    """Notifications from the Cloud API. Text messages are stored and queued; status updates
    and other message types are acknowledged and ignored. Redeliveries (same ``wamid``) are
    recognised and create no second message."""
    secret = settings.whatsapp_app_secret
    if secret is None:
        raise ChannelNotConfiguredError("Canal WhatsApp não configurado.")
    body = await read_body(request, resources.settings.max_body_bytes)
    if not valid_signature(app_secret=secret.get_secret_value(), body=body, header=signature):
        raise InvalidSignatureError("Assinatura X-Hub-Signature-256 inválida.")
    accepted = 0
    for inbound in texts_of_notification(parse_json(body)):
        _conversation, stored = await ingest_text(
            resources=resources, channel=NAME, inbound=inbound
        )
        accepted += stored is not None
    return {"status": "ok", "accepted": accepted}
