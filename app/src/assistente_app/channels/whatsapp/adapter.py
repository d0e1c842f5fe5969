"""The WhatsApp channel as the app sees it."""

from __future__ import annotations

from assistente_app.channels.base import ChannelAdapter
from assistente_app.channels.whatsapp import NAME
from assistente_app.channels.whatsapp.client import WhatsAppClient
from assistente_app.channels.whatsapp.router import router
from assistente_app.channels.whatsapp.settings import WhatsAppSettings

ADAPTER = ChannelAdapter(
    name=NAME,
    settings=WhatsAppSettings,
    router=router,
    outbound=WhatsAppClient.from_settings,
    message_routes=("/api/v1/channels/whatsapp/webhook",),
)
