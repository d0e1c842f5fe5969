"""The action server's logs as JSON lines, like the app's: the protocol and conversation of the
action call being run, and personal data masked by the project's one masking
(``assistente_contract.privacy``)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

from assistente_contract.privacy import mask_pii

protocol_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("protocol", default=None)
conversation_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "conversation_id", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            # timezone.utc, not datetime.UTC: the action server image runs Python 3.10.
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),  # noqa: UP017
            "level": record.levelname,
            "logger": record.name,
            "message": mask_pii(record.getMessage()),
        }
        if (protocol := protocol_var.get()) is not None:
            entry["protocol"] = protocol
        if (conversation := conversation_var.get()) is not None:
            entry["conversation_id"] = conversation
        if record.exc_info:
            entry["exception"] = mask_pii(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure() -> None:
    """Every logger of the process writes JSON lines to stderr (rasa_sdk's own included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level or logging.INFO
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("rasa_sdk", "sanic.root", "sanic.error", "sanic.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def bind_call(body: Any) -> None:
    """Take the protocol and conversation id from an action call (the tracker's sender id and
    the metadata the worker sends with every message, per the app ⇄ Rasa contract)."""
    tracker = body.get("tracker") if isinstance(body, dict) else None
    if not isinstance(tracker, dict):
        return
    sender = tracker.get("sender_id")
    metadata = (tracker.get("latest_message") or {}).get("metadata") or {}
    conversation_var.set(str(sender) if sender else None)
    protocol = metadata.get("protocol") if isinstance(metadata, dict) else None
    protocol_var.set(str(protocol) if protocol else None)
