"""Telegram Bot API webhook (``setWebhook`` with ``secret_token``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from assistente_app.api.deps import ResourcesDep
from assistente_app.channels.base import enabled_dependency, settings_dependency
from assistente_app.channels.ingest import ingest_text
from assistente_app.channels.telegram import NAME
from assistente_app.channels.telegram.inbound import text_of_update
from assistente_app.channels.telegram.settings import TelegramSettings
from assistente_app.channels.webhooks import (
    ChannelNotConfiguredError,
    InvalidSignatureError,
    parse_json,
    read_body,
)
from assistente_app.core.security import constant_time_equals

router = APIRouter(
    prefix="/api/v1/channels/telegram",
    tags=["channels"],
    dependencies=[Depends(enabled_dependency(NAME))],
)
TelegramSettingsDep = Annotated[TelegramSettings, Depends(settings_dependency(TelegramSettings))]


# Documented so clients (and the fuzzer) know its shape; parsed by hand (inbound.py), because
# anything else Telegram sends must be acknowledged, not refused.
UPDATE_SCHEMA = {
    "type": "object",
    "properties": {
        "update_id": {"type": "integer"},
        "message": {
            "type": "object",
            "properties": {
                "message_id": {"type": "integer"},
                "text": {"type": "string"},
                "chat": {"type": "object", "properties": {"id": {"type": "integer"}}},
            },
        },
    },
}


@router.post(
    "/webhook",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UPDATE_SCHEMA}},
        }
    },
)
async def telegram_receive(
    request: Request,
    resources: ResourcesDep,
    settings: TelegramSettingsDep,
    secret_token: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> dict[str, Any]:
    """An ``Update``; only ``message``/``edited_message`` with text are used. ``update_id`` is
    the idempotency key, so Telegram's redeliveries create one message."""
    expected = settings.telegram_webhook_secret
    if expected is None:
        raise ChannelNotConfiguredError("Canal Telegram não configurado.")
    if not constant_time_equals(secret_token, expected.get_secret_value()):
        raise InvalidSignatureError("Cabeçalho X-Telegram-Bot-Api-Secret-Token inválido.")
    inbound = text_of_update(
        parse_json(await read_body(request, resources.settings.max_body_bytes))
    )
    if inbound is None:
        return {"status": "ignored"}
    _conversation, stored = await ingest_text(resources=resources, channel=NAME, inbound=inbound)
    return {"status": "ok" if stored is not None else "rate_limited"}
