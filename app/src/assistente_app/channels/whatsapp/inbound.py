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
    for entry in _objects(payload.get("entry")):
        for change in _objects(entry.get("changes")):
            value = change.get("value")
            for message in _objects(value.get("messages") if isinstance(value, dict) else None):
                if message.get("type") != "text":
                    log.info("ignored WhatsApp message of type %r", str(message.get("type"))[:20])
                    continue
                body = message.get("text")
                text = body.get("body") if isinstance(body, dict) else None
                sender = message.get("from")
                if not isinstance(text, str) or not text.strip() or not isinstance(sender, str):
                    continue
                text, sender = text.strip(), sender.strip()
                if not sender:
                    continue
                wamid = message.get("id")
                key = f"whatsapp:{wamid}" if isinstance(wamid, str) and wamid else None
                texts.append(InboundText(sender=sender, text=text, idempotency_key=key))
    return texts


def _objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list; anything else in the payload is ignored, not a 500."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
