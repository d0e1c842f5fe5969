"""Settings of the Telegram Bot API channel."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from assistente_app.core.settings import SETTINGS_CONFIG


class TelegramSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    telegram_enabled: bool = Field(
        default=True,
        description="Off: the webhook and replies answer 404 channel_disabled; nothing is sent",
    )

    telegram_bot_token: SecretStr | None = Field(default=None, description="Sends replies")
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, description="Checks X-Telegram-Bot-Api-Secret-Token (setWebhook)"
    )
    telegram_api_base: str = "https://api.telegram.org"
