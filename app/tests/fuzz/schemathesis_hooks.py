"""Schemathesis hooks for the API fuzz run (loaded by ``st`` through SCHEMATHESIS_HOOKS).

Random ids and tokens only ever reach the first check of each route (401/403/404). To go
deeper, the hooks remember every conversation the fuzzer opens (``after_call``) and, for two
cases out of three, aim a case at one of them with its own token (``before_call``); agent and
admin routes get a real admin token from the test's OIDC issuer; the Telegram webhook gets
its secret. Choices depend on the case itself, so a seed reproduces a run.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import schemathesis

ADMIN_TOKEN = os.environ["FUZZ_ADMIN_TOKEN"]
TELEGRAM_SECRET = os.environ["FUZZ_TELEGRAM_SECRET"]
# conversation id -> (token, protocol)
OPENED: dict[str, tuple[str, str]] = {}


def _pick(case: Any, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}|{case.path_parameters}|{case.query}|{case.body}".encode())
    return int.from_bytes(digest.digest()[:4], "big")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    path = case.operation.path
    headers = dict(case.headers or {})
    if path.startswith(("/api/v1/agent", "/api/v1/admin")):
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    elif path.startswith("/api/v1/channels/telegram"):
        headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
    elif OPENED and _pick(case, "aim") % 3:
        ids = sorted(OPENED)
        conversation_id = ids[_pick(case, "which") % len(ids)]
        token, protocol = OPENED[conversation_id]
        params = dict(case.path_parameters or {})
        if "conversation_id" in params:
            params["conversation_id"] = conversation_id
        if "protocol" in params:
            params["protocol"] = protocol
        case.path_parameters = params
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if case.operation.path == "/api/v1/conversations" and response.status_code == 201:
        body = response.json()
        OPENED[body["id"]] = (body["token"], body["protocol"])
