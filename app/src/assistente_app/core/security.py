"""Comparing secrets without leaking them through timing or exceptions."""

from __future__ import annotations

import hmac


def _bytes(value: str) -> bytes:
    # Headers arrive as latin-1 and JSON may carry lone surrogates: neither may raise here.
    return value.encode("utf-8", "surrogatepass")


def constant_time_equals(given: str | None, expected: str) -> bool:
    """Whether ``given`` equals ``expected``, in time that does not depend on where they differ.

    ``hmac.compare_digest`` raises ``TypeError`` on ``str`` with non-ASCII characters, which a
    client controls; comparing the UTF-8 bytes answers ``False`` instead.
    """
    if given is None:
        return False
    return hmac.compare_digest(_bytes(given), _bytes(expected))
