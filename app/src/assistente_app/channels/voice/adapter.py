"""The voice channel as the app sees it. Replies go back in the answer to the gateway's pending
webhook call (TwiML), so the worker sends nothing itself."""

from __future__ import annotations

from assistente_app.channels.base import ChannelAdapter
from assistente_app.channels.voice import NAME
from assistente_app.channels.voice.router import router
from assistente_app.channels.voice.settings import VoiceSettings

ADAPTER = ChannelAdapter(
    name=NAME,
    settings=VoiceSettings,
    router=router,
    outbound=None,
    message_routes=("/api/v1/channels/voice/webhook",),
)
