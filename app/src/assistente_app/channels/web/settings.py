"""Settings of the web contract (the widget, and any client that speaks it)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from assistente_app.core.settings import SETTINGS_CONFIG


class WebSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    conversation_create_per_minute: int = Field(
        default=20, description="Conversations one IP address may open per minute"
    )
