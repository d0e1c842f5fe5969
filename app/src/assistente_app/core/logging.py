"""JSON logs with request/protocol ids and masking of CPF, e-mail and phone numbers (LGPD)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
protocol_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("protocol", default=None)

_CPF = re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Brazilian phones: optional +55, optional area code in parentheses, 8-9 digit subscriber.
_PHONE = re.compile(r"(?<![\d-])(?:\+?55[\s-]?)?(?:\(?\d{2}\)?[\s-]?)?9?\d{4}[\s-]?\d{4}(?![\d-])")
_PROTOCOL = re.compile(r"\b\d{8}-\d{6}-\d\b")


def mask_pii(text: str) -> str:
    """Replace CPF, e-mail and phone numbers; protocol numbers are kept (they are not PII)."""
    protocols: list[str] = []

    def _keep(match: re.Match[str]) -> str:
        protocols.append(match.group(0))
        return f"\x00{len(protocols) - 1}\x00"

    text = _PROTOCOL.sub(_keep, text)
    text = _EMAIL.sub("[email]", text)
    text = _CPF.sub("[cpf]", text)
    text = _PHONE.sub("[telefone]", text)
    for index, value in enumerate(protocols):
        text = text.replace(f"\x00{index}\x00", value)
    return text


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
