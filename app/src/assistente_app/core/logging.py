"""JSON logs with request/protocol ids, and the one place where what must never reach a log or a
dead letter is removed (LGPD; secrets).

``redact`` is applied to every log message and traceback, and to the error kept with a dead
letter. It removes, in this order:

* secrets: every value registered with ``register_secrets`` (the settings' ``SecretStr``s),
  bearer tokens, and Telegram bot tokens in URLs (``/bot<token>/``, as httpx logs them);
* what the database echoes back: SQLAlchemy's ``[parameters: ...]`` (message texts are bound
  parameters) and PostgreSQL's ``DETAIL`` lines (``Failing row contains (...)``,
  ``Key (...)=(...)``);
* identifiers of people (``assistente_contract.privacy.mask_pii``, shared with the action
  server): CNJ case numbers, CPF (with dots, dashes or spaces),
  e-mail addresses and phone numbers. Protocol numbers stay: they identify an attendance, not a
  person, and support needs them.

Names have no shape a pattern can tell from ordinary words, so they are kept out another way:
nothing logs free text (message texts, escalation reasons, the clerk's display name), and the
database's echoes above are cut.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

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


_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_BOT_PATH = re.compile(r"/bot\d+:[^/\s'\"]+")
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\(Background|\n|$))", re.DOTALL)
_PG_DETAIL = re.compile(r"(DETAIL:\s*).*?(?=\n[A-Z]+:|\n\[|\n\(|$)", re.DOTALL)
_PG_ECHOES = re.compile(r"(Failing row contains |Key )\(.*?\)(=\(.*?\))?(?= |\.|$)", re.DOTALL)
_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Values that ``redact`` replaces wherever they appear (tokens, passwords, keys)."""
    # Very short values would blank out ordinary words: secrets are never that short.
    _secrets.update(v for v in values if len(v) >= 6)


def redact(text: str) -> str:
    """``text`` without secrets, database echoes or identifiers of people (see the module)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "[segredo]")
    text = _BEARER.sub(r"\1 [segredo]", text)
    text = _BOT_PATH.sub("/bot[segredo]", text)
    text = _SQL_PARAMETERS.sub("[parameters: omitidos]", text)
    text = _PG_DETAIL.sub(r"\1[omitido]", text)
    text = _PG_ECHOES.sub(r"\1(omitido)", text)
    return mask_pii(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
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
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr) for the root logger and everything below it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings; our middleware logs requests instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request line at INFO, and a Telegram URL carries the bot token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
