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
