"""Telegram Bot API webhook (``setWebhook`` with ``secret_token``)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from assistente_app.channels.common import (
    ChannelNotConfiguredError,
    InvalidSignatureError,
    parse_json,
    read_body,
)
from assistente_app.channels.ingest import ingest_text
from assistente_app.core.deps import ResourcesDep

router = APIRouter(prefix="/api/v1/channels/telegram", tags=["channels"])


@router.post("/webhook")
async def telegram_receive(
    request: Request,
    resources: ResourcesDep,
    secret_token: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> dict[str, Any]:
    """An ``Update``; only ``message``/``edited_message`` with text are used. ``update_id`` is
    the idempotency key, so Telegram's redeliveries create one message."""
    expected = resources.settings.telegram_webhook_secret
    if expected is None:
        raise ChannelNotConfiguredError("Canal Telegram não configurado.")
    if not secret_token or not hmac.compare_digest(secret_token, expected.get_secret_value()):
        raise InvalidSignatureError("Cabeçalho X-Telegram-Bot-Api-Secret-Token inválido.")
    update = parse_json(await read_body(request, resources.settings.max_body_bytes))
    message = update.get("message") or update.get("edited_message") or {}
    text = str(message.get("text") or "").strip()
    chat_id = (message.get("chat") or {}).get("id")
    if not text or chat_id is None or "update_id" not in update:
        return {"status": "ignored"}
    _conversation, stored = await ingest_text(
        resources=resources,
        channel="telegram",
        sender=str(chat_id),
        text=text,
        idempotency_key=f"telegram:{update['update_id']}",
    )
    return {"status": "ok" if stored is not None else "rate_limited"}
