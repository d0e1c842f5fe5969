"""What every channel's inbound side produces: texts from a sender, ready for ``ingest``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InboundText:
    sender: str
    """The sender's address on the channel (WhatsApp ``wa_id``, Telegram chat id, ``CallSid``)."""
    text: str
    idempotency_key: str | None
    """The provider's id of the message, so that a redelivery stores nothing twice."""
