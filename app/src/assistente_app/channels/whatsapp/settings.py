"""Settings of the WhatsApp Cloud API channel."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from assistente_app.core.settings import SETTINGS_CONFIG


class WhatsAppSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    whatsapp_enabled: bool = Field(
        default=True,
        description="Off: the webhook and replies answer 404 channel_disabled; nothing is sent",
    )

    whatsapp_verify_token: SecretStr | None = Field(
        default=None, description="Answers Meta's GET subscription challenge"
    )
    whatsapp_app_secret: SecretStr | None = Field(
        default=None, description="Checks X-Hub-Signature-256 on notifications"
    )
    whatsapp_access_token: SecretStr | None = Field(default=None, description="Sends replies")
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_base: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v21.0"
