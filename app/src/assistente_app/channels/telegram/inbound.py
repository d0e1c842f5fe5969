"""Reading Telegram's webhook ``Update`` objects (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from assistente_app.channels.inbound import InboundText


def text_of_update(update: dict[str, Any]) -> InboundText | None:
    """The text of a ``message``/``edited_message``; ``None`` for anything else. ``update_id``
    is the idempotency key, so Telegram's redeliveries create one message."""
    message = update.get("message") or update.get("edited_message") or {}
    text = str(message.get("text") or "").strip()
    chat_id = (message.get("chat") or {}).get("id")
    if not text or chat_id is None or "update_id" not in update:
        return None
    return InboundText(
        sender=str(chat_id), text=text, idempotency_key=f"telegram:{update['update_id']}"
    )
