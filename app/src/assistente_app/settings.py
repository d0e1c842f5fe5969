"""The one settings object the API and the worker run with: the core's and every channel's.

Adding a channel adds its settings class here (and its adapter to ``channels.registry``); a test
checks that every registered channel's settings are part of ``Settings``.
"""

from __future__ import annotations

from functools import lru_cache

from assistente_app.channels.mobile.settings import MobileSettings
from assistente_app.channels.telegram.settings import TelegramSettings
from assistente_app.channels.voice.settings import VoiceSettings
from assistente_app.channels.web.settings import WebSettings
from assistente_app.channels.whatsapp.settings import WhatsAppSettings
from assistente_app.core.settings import SETTINGS_CONFIG, CoreSettings


class Settings(
    WebSettings, MobileSettings, WhatsAppSettings, TelegramSettings, VoiceSettings, CoreSettings
):
    """Every knob of the API and the worker, from ``ASSISTENTE_*`` environment variables."""

    model_config = SETTINGS_CONFIG


@lru_cache
def get_settings() -> Settings:
    return Settings()
