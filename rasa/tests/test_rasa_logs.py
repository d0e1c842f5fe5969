"""The action server's JSON logs: one object per line, the action call's protocol and
conversation, and personal data masked by the project's one masking."""

from __future__ import annotations

import json
import logging

from rasa_sdk_plugins import logs


def _format(message: str) -> dict[str, object]:
    record = logging.LogRecord("actions.agents", logging.INFO, __file__, 1, message, None, None)
    line = logs.JsonFormatter().format(record)
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_lines_carry_the_call_protocol_and_conversation() -> None:
    logs.bind_call(
        {
            "next_action": "action_consultar_processo",
            "tracker": {
                "sender_id": "c0ffee00-0000-0000-0000-000000000001",
                "latest_message": {"metadata": {"protocol": "20261125-004217-3"}},
            },
        }
    )
    entry = _format("consulta ao DataJud")
    assert entry["protocol"] == "20261125-004217-3"
    assert entry["conversation_id"] == "c0ffee00-0000-0000-0000-000000000001"
    assert entry["level"] == "INFO"


def test_personal_data_is_masked_and_protocols_kept() -> None:
    entry = _format(
        "cidadão 123.456.789-09 escreveu de maria@example.com, (11) 98765-4321, "
        "protocolo 20261125-004217-3"
    )
    message = str(entry["message"])
    assert "123.456.789-09" not in message
    assert "maria@example.com" not in message
    assert "98765-4321" not in message
    assert "[cpf]" in message
    assert "[email]" in message
    assert "20261125-004217-3" in message


def test_a_call_without_a_tracker_binds_nothing_new() -> None:
    logs.bind_call({"tracker": None})
    logs.bind_call("not json")
