"""Settings of the voice channel (Twilio or a SIP/VoIP gateway speaking TwiML)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from assistente_app.core.settings import SETTINGS_CONFIG


class VoiceSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    voice_enabled: bool = Field(
        default=True,
        description="Off: the voice webhook answers 404 channel_disabled; nothing is sent",
    )

    voice_auth_token: SecretStr | None = Field(
        default=None, description="Checks X-Twilio-Signature"
    )
    voice_reply_timeout_s: float = Field(
        default=8.0, description="How long one webhook call waits for the bot's reply"
    )
    voice_transfer_target: str | None = Field(
        default=None, description="sip:… or a phone number the call is dialled to when queued"
    )
