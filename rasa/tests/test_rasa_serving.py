"""serving.patches: the action-response validation gives the same verdicts and the same error
messages as Rasa's own, with the validator built once; an action server that is restarting is
waited for instead of the action being dropped."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from serving import patches

ORIGINAL = RemoteAction._validate_action_result  # before apply() replaces it

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


def test_an_action_server_that_comes_back_is_waited_for() -> None:
    """The call is retried until the action server listens (Rasa 3.6 would drop the action)."""
    patches.apply()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = json.dumps({"events": [], "responses": [{"text": "Olá de volta"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    servers: list[HTTPServer] = []

    def start_late() -> None:
        server = HTTPServer(("127.0.0.1", port), Handler)
        servers.append(server)
        server.serve_forever()

    late = threading.Timer(1.5, start_late)
    late.start()
    endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")
    action = RemoteAction("action_consultar_processo", endpoint)
    tracker = DialogueStateTracker("espera", [])
    nlg = TemplatedNaturalLanguageGenerator({})
    try:
        events = asyncio.run(action.run(CollectingOutputChannel(), nlg, tracker, Domain.empty()))
    finally:
        while late.is_alive() and not servers:
            time.sleep(0.05)
        if servers:
            servers[0].shutdown()
            servers[0].server_close()
        late.cancel()
        late.join()
    assert [e.text for e in events if isinstance(e, BotUttered)] == ["Olá de volta"]
