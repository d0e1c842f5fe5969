"""The domain's responses, rendered the way Rasa renders what an action utters with
``response=`` and variables, so the actions' tests read the texts citizens read."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DOMAIN_DIR = Path(__file__).resolve().parent.parent / "domain"
_PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")


@lru_cache(maxsize=1)
def responses() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(DOMAIN_DIR.glob("*.yml")):
        found.update(yaml.safe_load(path.read_text(encoding="utf-8")).get("responses") or {})
    return found


def placeholders(name: str) -> set[str]:
    return {
        match
        for variation in responses()[name]
        for match in _PLACEHOLDER.findall(str(variation.get("text") or ""))
    }


def render(message: dict[str, Any]) -> dict[str, Any]:
    """A dispatcher message with its response filled in; strict where Rasa only logs: an
    unknown response or a variable the action did not pass fails the test."""
    name = message.get("response")
    if not name:
        return message
    assert name in responses(), f"{name} is not a response of rasa/domain"
    variation = responses()[name][0]
    values = {key: value for key, value in message.items() if value is not None}
    missing = placeholders(name) - values.keys()
    assert not missing, f"{name} needs {sorted(missing)}"
    text = _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), str(variation.get("text") or ""))
    return {
        **message,
        "text": text,
        "buttons": [*(variation.get("buttons") or []), *(message.get("buttons") or [])],
    }
