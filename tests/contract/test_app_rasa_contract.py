"""The app ⇄ Rasa contract held from both sides: the Rasa actions build their payloads in
Rasa's own venv, the worker reads them here, and both agree with the JSON Schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from assistente_app.worker.rasa import interpret
from assistente_contract import (
    TEAM_LABELS,
    TEAMS,
    Escalation,
    MessageMetadata,
    json_schema,
    sources_payload,
)
from assistente_testbed.paths import repo_root

REPO = Path(repo_root())


def validate(definition: str, instance: Any) -> None:
    schema = json_schema()
    jsonschema.validate(instance, {**schema, "$ref": f"#/$defs/{definition}"})


def test_schema_and_package_name_the_same_teams() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["team"]["enum"] == list(TEAMS)
    assert set(TEAM_LABELS) == set(TEAMS)
    for team, label in TEAM_LABELS.items():
        assert f"{team} = {label}" in schema["$defs"]["team"]["description"]


def test_payloads_the_package_builds_follow_the_schema() -> None:
    validate("escalation", Escalation(team="geral", reason="x" * 900).to_payload())
    summary = Escalation(team="geral", intent="consultar_processo", case_number="0" * 200)
    validate("escalation", summary.to_payload())
    assert Escalation.from_payload(summary.to_payload()).intent == "consultar_processo"
    validate(
        "sources",
        sources_payload(
            [
                {
                    "title": "Certidões",
                    "section": "Negativa",
                    "path": "knowledge/c.md",
                    "confidence": 1,
                }
            ]
        ),
    )
    with pytest.raises(jsonschema.ValidationError):
        validate("escalation", {"type": "escalation", "team": "jurídico", "reason": ""})
    # The reader is lenient where the writer is strict: an unknown team still reaches a human.
    assert Escalation.from_payload({"team": "jurídico"}).team == "geral"


def test_contract_package_is_standard_library_only() -> None:
    package = REPO / "contract" / "src" / "assistente_contract"
    code = "\n".join(path.read_text() for path in package.glob("*.py"))
    imported = {
        line.split()[1].split(".")[0]
        for line in code.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def rasa_python() -> str:
    venv = subprocess.run(
        [str(REPO / "hack" / "rasa-setup.sh")], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    return str(Path(venv) / "bin" / "python")


def test_what_the_actions_send_is_what_the_worker_reads() -> None:
    metadata = MessageMetadata(
        protocol="20261125-004217-3", channel="web", conversation_id="6c3b0f7e-conversa"
    )
    validate("message_metadata", metadata)
    rasa_dir = REPO / "rasa"
    paths = [rasa_dir, rasa_dir / "tests", REPO / "contract" / "src", REPO / "testbed" / "src"]
    result = subprocess.run(
        [rasa_python(), str(rasa_dir / "tests" / "rest_channel_output.py"), json.dumps(metadata)],
        cwd=rasa_dir,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sent = json.loads(result.stdout.splitlines()[-1])

    for item in sent["escalation"] + sent["knowledge"]:
        if "custom" in item:
            validate(item["custom"]["type"], item["custom"])

    escalation = interpret(sent["escalation"])
    # The bot's summary for the clerk: the request for a person itself was the only intent.
    assert escalation.escalation == Escalation(
        team="servicos_portal",
        reason="Cidadão pediu para falar com um atendente",
        intent="falar_com_atendente",
    )
    [(text, _payload)] = escalation.messages
    assert TEAM_LABELS["servicos_portal"] in text
    assert metadata["protocol"] in text

    knowledge = interpret(sent["knowledge"])
    assert knowledge.escalation is None
    answer_text, answer_payload = knowledge.messages[0]
    assert "knowledge/certidoes.md" in answer_text
    assert answer_payload is not None
    assert answer_payload["sources"][0]["path"] == "knowledge/certidoes.md"
    assert knowledge.messages[-1][1] == {
        "buttons": [{"title": "Sim", "payload": "/afirmar"}, {"title": "Não", "payload": "/negar"}]
    }
