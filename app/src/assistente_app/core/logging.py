"""JSON logs with request/protocol ids; CPF, e-mail and phone numbers masked (LGPD) by the
one masking every log writer of the project shares (``assistente_contract.privacy``)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

from assistente_contract.privacy import mask_pii

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
protocol_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("protocol", default=None)
conversation_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "conversation_id", default=None
)


def bind_conversation(*, protocol: str, conversation_id: object) -> None:
    """Every log line of the current request or turn names this attendance from now on."""
    protocol_var.set(protocol)
    conversation_var.set(str(conversation_id))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_pii(record.getMessage()),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (protocol := protocol_var.get()) is not None:
            entry["protocol"] = protocol
        if (conversation := conversation_var.get()) is not None:
            entry["conversation_id"] = conversation
        for key in ("conversation_id", "message_id", "channel", "stream"):
            if (value := getattr(record, key, None)) is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = mask_pii(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings; our middleware logs requests instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
