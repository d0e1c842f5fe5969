"""Plain-text rendering of rich replies for channels without buttons (WhatsApp text, Telegram,
voice). Buttons become a spoken/written list of options so nothing is lost."""

from __future__ import annotations

from typing import Any


def button_titles(payload: dict[str, Any] | None) -> list[str]:
    buttons = (payload or {}).get("buttons") or []
    return [str(b.get("title")) for b in buttons if isinstance(b, dict) and b.get("title")]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " ou " + items[-1]


def as_text(text: str, payload: dict[str, Any] | None) -> str:
    titles = button_titles(payload)
    if not titles:
        return text
    options = "\n".join(f"• {title}" for title in titles)
    return f"{text}\n\nOpções:\n{options}" if text else f"Opções:\n{options}"


def as_speech(text: str, payload: dict[str, Any] | None) -> str:
    titles = button_titles(payload)
    if not titles:
        return text
    return f"{text} Você pode dizer: {_join(titles)}."
