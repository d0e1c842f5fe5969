"""What the providers' webhooks share: reading a bounded body, parsing JSON, their errors."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from assistente_app.core.errors import (
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PayloadTooLargeError,
)


class InvalidSignatureError(NotAuthenticatedError):
    code = "invalid_signature"


class ChannelNotConfiguredError(NotFoundError):
    code = "channel_not_configured"


class MalformedPayloadError(InvalidInputError):
    code = "malformed_payload"


async def read_body(request: Request, limit: int) -> bytes:
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError("Corpo da requisição grande demais.")
    return body


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    # RecursionError: JSON nested deeper than the interpreter's stack allows.
    except (ValueError, RecursionError) as exc:
        raise MalformedPayloadError("O corpo da requisição não é um JSON válido.") from exc
    if not isinstance(data, dict):
        raise MalformedPayloadError("Esperava um objeto JSON.")
    return data
