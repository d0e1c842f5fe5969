"""Small JSON-over-HTTP helpers for talking to local servers (loopback only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def get_json(url: str, params: dict[str, str] | None = None, *, timeout: float = 10) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL)
        return json.loads(response.read())


def post_json(url: str, payload: Any, *, timeout: float = 10) -> Any:
    request = urllib.request.Request(  # noqa: S310 (loopback URL)
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = response.read()
    return json.loads(body) if body else None


def post_form(url: str, form: dict[str, str], *, timeout: float = 10) -> bytes:
    request = urllib.request.Request(  # noqa: S310 (loopback URL)
        url, data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return bytes(response.read())


def http_ok(url: str, *, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False
