"""Telegram Bot API ``sendMessage`` client (outbound)."""

from __future__ import annotations

import logging

import httpx

from assistente_app.channels.base import settings_as
from assistente_app.channels.telegram.settings import TelegramSettings
from assistente_app.core.errors import TransientError

log = logging.getLogger(__name__)


class TelegramClient:
    def __init__(self, settings: TelegramSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    @classmethod
    def from_settings(cls, settings: object, http: httpx.AsyncClient) -> TelegramClient:
        return cls(settings_as(settings, TelegramSettings), http)

    @property
    def configured(self) -> bool:
        return self.settings.telegram_bot_token is not None

    async def send(self, *, to: str, text: str) -> None:
        if not self.configured:
            raise RuntimeError("Telegram outbound not configured")
        message_id = await self.send_text(chat_id=to, text=text)
        log.debug("Telegram accepted message %s", message_id, extra={"channel": "telegram"})

    async def send_text(self, *, chat_id: str, text: str) -> int:
        """Send a message; returns Telegram's ``message_id``."""
        token = self.settings.telegram_bot_token
        assert token is not None
        base = self.settings.telegram_api_base.rstrip("/")
        url = f"{base}/bot{token.get_secret_value()}/sendMessage"
        try:
            response = await self.http.post(url, json={"chat_id": chat_id, "text": text[:4096]})
        except httpx.TransportError as exc:
            raise TransientError("Telegram API unreachable") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"Telegram API answered {response.status_code}")
        body = response.json()
        if not body.get("ok"):
            raise RuntimeError(f"Telegram refused sendMessage: {body.get('description')}")
        return int(body["result"]["message_id"])
