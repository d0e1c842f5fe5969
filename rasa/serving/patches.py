"""Fixes of Rasa 3.6.21's per-message hot path, found by profiling a turn (see docs/rasa.md).

Each patch replaces one function by one that behaves the same (same result, same errors, same
messages) at a lower cost, and checks first that it is patching the version it was written for:
on any other Rasa version it does nothing and says so.

1. The action server's answer is validated against a JSON schema on every action call.
   `RemoteAction._validate_action_result` calls `jsonschema.validate()`, which first validates
   the *schema itself* against the JSON Schema meta-schema (`check_schema`) and builds a new
   validator: about a fifth of the Rasa server's CPU per turn, for a schema that never changes.
   The patch builds the validator once and validates each answer with it.
2. When the action server cannot be reached (restarting, a pod being replaced), Rasa logs the
   error and carries on without the action: the citizen gets no answer and the turn is lost.
   The patch retries the call, awaiting, for up to `ACTION_SERVER_WAIT_S`, which covers an
   action server restart; after that the error is what it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

PATCHED_VERSION = "3.6.21"
ACTION_SERVER_WAIT_S = 20.0
_applied = False


@cache
def _action_result_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, as jsonschema.validate() would have done every time
    return cls(schema)


def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
    """RemoteAction._validate_action_result with a validator built once (same errors)."""
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_action_result_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    assert isinstance(error, ValidationError)
    raise error


def _waits_for_the_action_server(run: Any) -> Any:
    """RemoteAction.run, retried while the action server refuses or drops the connection."""
    import aiohttp
    from rasa.shared.exceptions import RasaException

    async def run_when_reachable(self: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + ACTION_SERVER_WAIT_S
        delay = 0.1
        while True:
            try:
                return await run(self, *args, **kwargs)
            except RasaException as error:
                unreachable = isinstance(error.__context__, aiohttp.ClientConnectionError)
                if not unreachable or time.monotonic() > deadline:
                    raise
                log.warning("action server unreachable, retrying %s", self.name())
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    run_when_reachable.__wrapped__ = run  # type: ignore[attr-defined]
    return run_when_reachable


def apply() -> bool:
    """Apply every patch once; False (and a warning) on a Rasa version they were not made for."""
    global _applied
    if _applied:
        return True
    from rasa.core.actions.action import RemoteAction

    import rasa

    if rasa.__version__ != PATCHED_VERSION:
        log.warning(
            "serving.patches: written for Rasa %s, running %s: not applied",
            PATCHED_VERSION,
            rasa.__version__,
        )
        return False
    RemoteAction._validate_action_result = _validate_action_result
    RemoteAction.run = _waits_for_the_action_server(RemoteAction.run)
    _applied = True
    return True
