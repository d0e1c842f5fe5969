"""The Telegram channel as the app sees it."""

from __future__ import annotations

from assistente_app.channels.base import ChannelAdapter
from assistente_app.channels.telegram import NAME
from assistente_app.channels.telegram.client import TelegramClient
from assistente_app.channels.telegram.router import router
from assistente_app.channels.telegram.settings import TelegramSettings

ADAPTER = ChannelAdapter(
    name=NAME,
    settings=TelegramSettings,
    router=router,
    outbound=TelegramClient.from_settings,
    message_routes=("/api/v1/channels/telegram/webhook",),
)
