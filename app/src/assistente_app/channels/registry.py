"""Every channel of the app, in one place. The API mounts their routes, the worker builds their
outbound senders, and ``assistente_app.settings.Settings`` holds their settings."""

from __future__ import annotations

from collections.abc import Mapping

from assistente_app.channels.base import ChannelAdapter
from assistente_app.channels.mobile.adapter import ADAPTER as MOBILE
from assistente_app.channels.telegram.adapter import ADAPTER as TELEGRAM
from assistente_app.channels.voice.adapter import ADAPTER as VOICE
from assistente_app.channels.web.adapter import ADAPTER as WEB
from assistente_app.channels.whatsapp.adapter import ADAPTER as WHATSAPP

CHANNELS: tuple[ChannelAdapter, ...] = (WEB, MOBILE, WHATSAPP, TELEGRAM, VOICE)


def by_name() -> Mapping[str, ChannelAdapter]:
    return {channel.name: channel for channel in CHANNELS}


def enabled_channels(settings: object) -> frozenset[str]:
    return frozenset(channel.name for channel in CHANNELS if channel.is_enabled(settings))
