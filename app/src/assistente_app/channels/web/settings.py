"""Settings of the web contract (the widget, and any client that speaks it)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from assistente_app.core.settings import SETTINGS_CONFIG


class WebSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    web_enabled: bool = Field(
        default=True,
        description="Off: the widget and web conversations answer 404 channel_disabled",
    )

    conversation_create_per_minute: int = Field(
        default=20, description="Conversations one IP address may open per minute"
    )

    # WebSockets: each open one costs ~40 KiB of the API's memory, so they are bounded.
    ws_max_connections: int = Field(
        default=10_000, ge=1, description="Open WebSockets per API process; more close with 1013"
    )
    ws_max_per_conversation: int = Field(
        default=5, ge=1, description="Open WebSockets per conversation (tabs, devices)"
    )
    ws_auth_timeout_s: float = Field(
        default=5.0, gt=0, description="How long a socket may stay open before sending its token"
    )
    ws_max_frame_bytes: int = Field(
        default=16 * 1024,
        ge=256,
        description="Largest frame a client may send (clerks' access tokens take a few KiB)",
    )
    ws_reauth_interval_s: float = Field(
        default=300.0, gt=0, description="How often an open socket checks its token is still valid"
    )
