"""WhatsApp Cloud API: signature check and the Graph API ``/messages`` client (outbound)."""

from __future__ import annotations

import hashlib
import hmac
import logging

import httpx

from assistente_app.channels.base import settings_as
from assistente_app.channels.whatsapp.settings import WhatsAppSettings
from assistente_app.core.errors import TransientError
from assistente_app.core.security import constant_time_equals

log = logging.getLogger(__name__)


def valid_signature(*, app_secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return constant_time_equals(header.removeprefix("sha256="), expected)


class WhatsAppClient:
    def __init__(self, settings: WhatsAppSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    @classmethod
    def from_settings(cls, settings: object, http: httpx.AsyncClient) -> WhatsAppClient:
        return cls(settings_as(settings, WhatsAppSettings), http)

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(s.whatsapp_access_token and s.whatsapp_phone_number_id)

    async def send(self, *, to: str, text: str) -> None:
        if not self.configured:
            raise RuntimeError("WhatsApp outbound not configured")
        wamid = await self.send_text(to=to, text=text)
        log.debug("WhatsApp accepted message %s", wamid, extra={"channel": "whatsapp"})

    async def send_text(self, *, to: str, text: str) -> str:
        """Send a text message; returns the ``wamid`` the Graph API assigned."""
        s = self.settings
        assert s.whatsapp_access_token is not None
        url = (
            f"{s.whatsapp_api_base.rstrip('/')}/{s.whatsapp_api_version}/"
            f"{s.whatsapp_phone_number_id}/messages"
        )
        try:
            response = await self.http.post(
                url,
                headers={"Authorization": f"Bearer {s.whatsapp_access_token.get_secret_value()}"},
                json={
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to,
                    "type": "text",
                    "text": {"preview_url": False, "body": text[:4096]},
                },
            )
        except httpx.TransportError as exc:
            raise TransientError(f"WhatsApp API unreachable: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"WhatsApp API answered {response.status_code}")
        response.raise_for_status()
        return str(response.json()["messages"][0]["id"])
