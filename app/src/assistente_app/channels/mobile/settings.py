"""Settings of the mobile-app channel."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from assistente_app.core.settings import SETTINGS_CONFIG


class MobileSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    mobile_enabled: bool = Field(
        default=True, description="Off: the app's conversations answer 404 channel_disabled"
    )
