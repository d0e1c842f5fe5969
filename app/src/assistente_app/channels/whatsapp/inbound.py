"""Reading the Cloud API's webhook notifications (pure: no I/O)."""

from __future__ import annotations

import logging
from typing import Any

from assistente_app.channels.inbound import InboundText

log = logging.getLogger(__name__)


def texts_of_notification(payload: dict[str, Any]) -> list[InboundText]:
    """The text messages of one notification. Status updates and other message types are
    acknowledged and ignored; the ``wamid`` makes redeliveries recognisable."""
    texts = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            for message in value.get("messages") or []:
                if message.get("type") != "text":
                    log.info("ignored WhatsApp message of type %s", message.get("type"))
                    continue
                text = str((message.get("text") or {}).get("body", "")).strip()
                sender = str(message.get("from", ""))
                if not text or not sender:
                    continue
                key = f"whatsapp:{message['id']}" if message.get("id") else None
                texts.append(InboundText(sender=sender, text=text, idempotency_key=key))
    return texts
