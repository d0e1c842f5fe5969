"""What a channel is to the rest of the app: one ``ChannelAdapter``, listed in ``registry``.

A channel brings its inbound side (the routes that parse what the provider or client sends and
hand texts to ``ingest``), its outbound side (``send``, for providers the worker must call), and
its own settings class. The API mounts every adapter's router; the worker builds every adapter's
outbound sender. Nothing else in the app names a channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from fastapi import APIRouter, Request
from pydantic_settings import BaseSettings

from assistente_app.core.errors import NotFoundError

S = TypeVar("S", bound=BaseSettings)


class Outbound(Protocol):
    """Delivers a reply, as plain text, to the citizen's address on the provider."""

    async def send(self, *, to: str, text: str) -> None: ...


# Built by the worker from the app's settings (which include the channel's) and its HTTP client.
OutboundFactory = Callable[[Any, httpx.AsyncClient], Outbound]


@dataclass(frozen=True)
class ChannelAdapter:
    name: str
    """The value stored in ``conversations.channel`` and used in metrics and logs."""
    settings: type[BaseSettings] | None
    """Its settings class; ``assistente_app.settings.Settings`` must inherit it."""
    router: APIRouter | None
    """Its inbound routes; ``None`` when it speaks another adapter's (mobile → web contract)."""
    outbound: OutboundFactory | None
    """``None`` when replies reach the citizen through the event hub (WebSocket, pending call)."""
    static: tuple[str, Path] | None = None
    """Files served as they are: (URL prefix, folder)."""
    message_routes: tuple[str, ...] = ()
    """Route templates whose POST carries citizen messages: refusals there are counted as
    rejected messages of this channel (metrics)."""

    def is_enabled(self, settings: object) -> bool:
        """The channel's switch, ``<name>_enabled`` in its settings (on without settings)."""
        if self.settings is None:
            return True
        return bool(getattr(settings_as(settings, self.settings), f"{self.name}_enabled"))


class ChannelDisabledError(NotFoundError):
    code = "channel_disabled"


def ensure_enabled(request: Request, channel: str) -> None:
    """Refuse work for a channel the court switched off (``channels.<name>.enabled``)."""
    if channel not in request.app.state.resources.enabled_channels:
        raise ChannelDisabledError(f"O canal {channel} está desativado neste tribunal.")


def enabled_dependency(channel: str) -> Callable[[Request], None]:
    """A router-level dependency: every route of the channel answers 404 while it is off."""

    def _channel_enabled(request: Request) -> None:
        ensure_enabled(request, channel)

    return _channel_enabled


def settings_as(settings: object, cls: type[S]) -> S:
    """The app's settings seen as one channel's (``Settings`` inherits every channel's class)."""
    if not isinstance(settings, cls):
        raise TypeError(
            f"{type(settings).__name__} does not include {cls.__name__}: "
            "add it to assistente_app.settings.Settings"
        )
    return settings


def settings_dependency(cls: type[S]) -> Callable[[Request], Awaitable[S]]:
    """A FastAPI dependency giving a router its channel's settings (async: no thread hop)."""

    async def _channel_settings(request: Request) -> S:
        return settings_as(request.app.state.resources.settings, cls)

    return _channel_settings
