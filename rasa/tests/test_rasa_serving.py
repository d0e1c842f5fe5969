"""serving.patches: the action-response validation gives the same verdicts and the same error
messages as Rasa's own, with the validator built once."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from serving import patches

ORIGINAL = RemoteAction._validate_action_result

VALID: list[dict[str, Any]] = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "equipe", "value": "geral"}], "responses": [{}]},
    {"responses": [{"text": "Olá", "buttons": []}]},
]
INVALID: list[dict[str, Any]] = [
    {"events": "not a list", "responses": []},
    {"events": [{"event": "slot"}], "responses": []},
    {"events": [], "responses": "texto solto"},
    {"events": [{"event": "no_such_event"}]},
]


def message_of(validate: Any, result: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        validate(RemoteAction("action_x", None), result)
    return str(raised.value.message)


def test_patch_is_applied_to_the_pinned_rasa() -> None:
    assert patches.apply()
    assert RemoteAction._validate_action_result is patches._validate_action_result


@pytest.mark.parametrize("result", VALID)
def test_valid_answers_pass_as_before(result: dict[str, Any]) -> None:
    assert ORIGINAL(RemoteAction("action_x", None), result)
    assert patches._validate_action_result(RemoteAction("action_x", None), result)


@pytest.mark.parametrize("result", INVALID)
def test_invalid_answers_fail_with_the_same_message(result: dict[str, Any]) -> None:
    expected = message_of(ORIGINAL, result)
    assert message_of(patches._validate_action_result, result) == expected
    assert "Failed to validate Action server response" in expected
