"""Reading Telegram's webhook ``Update`` objects (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from assistente_app.channels.inbound import InboundText


def text_of_update(update: dict[str, Any]) -> InboundText | None:
    """The text of a ``message``/``edited_message``; ``None`` for anything else. ``update_id``
    is the idempotency key, so Telegram's redeliveries create one message."""
    message = _object(update.get("message")) or _object(update.get("edited_message"))
    text = message.get("text")
    chat_id = _object(message.get("chat")).get("id")
    update_id = update.get("update_id")
    # Only what Telegram documents counts; any other shape is acknowledged and ignored.
    if not isinstance(text, str) or not text.strip() or not isinstance(chat_id, int | str):
        return None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    text = text.strip()
    return InboundText(sender=str(chat_id), text=text, idempotency_key=f"telegram:{update_id}")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
