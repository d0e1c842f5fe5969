"""The errors the app's domains raise, and the JSON shape every error takes.

Domain errors say *what* went wrong (a stable ``code`` and a pt-BR ``message`` for the user),
never how a transport reports it: ``api/errors.py`` maps each kind to an HTTP status, and a
channel that is not HTTP (voice, a worker notice) can say the same message its own way.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure the user can understand. ``retry_after_s`` says when trying again makes sense."""

    code = "bad_request"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class InvalidInputError(AppError):
    code = "bad_request"


class NotAuthenticatedError(AppError):
    code = "not_authenticated"


class ForbiddenError(AppError):
    code = "forbidden"


class NotFoundError(AppError):
    code = "not_found"


class ConflictError(AppError):
    code = "conflict"


class PayloadTooLargeError(AppError):
    code = "payload_too_large"


class TooManyRequestsError(AppError):
    code = "too_many_requests"


class ServiceUnavailableError(AppError):
    code = "service_unavailable"


class TransientError(Exception):
    """A dependency (Rasa, a channel's API, a lock) is temporarily unavailable: retry later
    without counting a failure against the message."""


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}
