"""The custom resource's ``agents`` as the action server reads them (the agents file the operator
mounts): switches, thresholds, failed turns and knowledge sources."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from actions import ActionBaseConhecimento, ActionConsultarProcesso, ActionServicosPortal
from actions.clients.knowledge_sources import KnowledgeSourceError
from actions.settings import AgentsFileError, Settings
from conftest import make_tracker
from domain_responses import render
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
QUESTION = "como tiro certidao negativa criminal"


def run(action: Action, tracker: Tracker) -> tuple[list[dict[str, Any]], list[Any]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return [render(message) for message in dispatcher.messages], events


def escalations(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["custom"] for m in messages if (m.get("custom") or {}).get("type") == "escalation"]


@pytest.fixture
def agents_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Writes an agents file shaped as the operator writes it and points AGENTS_FILE at it."""
    path = tmp_path / "agents.json"
    monkeypatch.setenv("AGENTS_FILE", str(path))

    def write(**overrides: dict[str, Any]) -> None:
        document: dict[str, Any] = {
            "technicalSupport": {"enabled": True, "escalationThreshold": 40, "maxFailedTurns": 2},
            "portalServices": {"enabled": True, "escalationThreshold": 40, "maxFailedTurns": 2},
            "proceduralGuidance": {"enabled": True, "escalationThreshold": 40, "maxFailedTurns": 2},
            "knowledgeBase": {
                "enabled": True,
                "escalationThreshold": 40,
                "maxFailedTurns": 2,
                "minScore": 55,
                "sources": [],
            },
        }
        for key, values in overrides.items():
            document[key] = {**document[key], **values}
        path.write_text(json.dumps(document))

    return write


def test_the_file_the_operator_writes_is_read(agents_file: Any) -> None:
    agents_file(knowledgeBase={"minScore": 70}, portalServices={"maxFailedTurns": 4})
    settings = Settings.from_env()
    assert settings.knowledge_threshold == pytest.approx(0.70)
    assert settings.agents.for_team("servicos_portal").max_failed_turns == 4
    assert settings.agents.for_team("suporte_tecnico").escalation_threshold == pytest.approx(0.4)


def test_an_unknown_field_is_a_clear_error(agents_file: Any) -> None:
    agents_file(portalServices={"escalationTreshold": 10})
    with pytest.raises(AgentsFileError, match="escalationTreshold"):
        Settings.from_env()


def test_a_switched_off_agent_sends_its_topic_to_people(agents_file: Any) -> None:
    agents_file(portalServices={"enabled": False}, proceduralGuidance={"enabled": False})
    messages, _ = run(ActionServicosPortal(), make_tracker(QUESTION))
    assert escalations(messages) == [
        {"type": "escalation", "team": "servicos_portal", "reason": "Tema atendido só por pessoas"}
    ]
    assert "Fonte:" not in "".join(m.get("text") or "" for m in messages)
    messages, _ = run(ActionConsultarProcesso(), make_tracker("meu processo"))
    assert escalations(messages)[0]["team"] == "orientacao_processual"


def test_thresholds_decide_between_answering_and_offering_a_human(agents_file: Any) -> None:
    agents_file()
    messages, _ = run(ActionServicosPortal(), make_tracker(QUESTION))
    assert "knowledge/certidoes.md" in messages[0]["text"]
    # The same question, understood with less confidence than the agent's threshold.
    unsure = make_tracker(QUESTION)
    unsure.latest_message["intent"]["confidence"] = 0.35
    messages, events = run(ActionServicosPortal(), unsure)
    assert "Quer que eu transfira" in messages[0]["text"]
    assert SlotSet("pergunta_pendente", "oferta_atendente") in events
    # minScore is the knowledge base's bar: this question's passage scores about 0.8.
    token = "o token do meu certificado nao funciona no computador novo"
    messages, _ = run(ActionBaseConhecimento(), make_tracker(token))
    assert "knowledge/pje.md" in messages[0]["text"]
    agents_file(knowledgeBase={"minScore": 90})
    messages, _ = run(ActionBaseConhecimento(), make_tracker(token))
    assert "Não encontrei" in messages[0]["text"]


def test_after_max_failed_turns_the_agent_escalates_without_asking(agents_file: Any) -> None:
    agents_file()
    question = make_tracker("receita de bolo de cenoura")
    messages, events = run(ActionBaseConhecimento(), question)
    assert escalations(messages) == []
    assert SlotSet("tentativas_sem_sucesso", 1) in events
    again = make_tracker("receita de bolo de cenoura", slots={"tentativas_sem_sucesso": 1})
    messages, events = run(ActionBaseConhecimento(), again)
    assert escalations(messages)[0]["team"] == "geral"
    assert SlotSet("tentativas_sem_sucesso", 0) in events


class DocumentServer:
    def __init__(self, body: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/markdown; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/docs/mediacao.md"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_knowledge_sources_replace_the_folder(agents_file: Any) -> None:
    site = DocumentServer(
        "---\ntitulo: Mediação\nequipe: orientacao_processual\n---\n\n"
        "## Como pedir uma sessão de mediação\n\nPalavras-chave: mediacao conciliacao acordo\n\n"
        "Peça a sessão de mediação no CEJUSC do tribunal, pelo formulário do portal.\n"
    )
    try:
        certidoes = (KNOWLEDGE / "certidoes").as_uri()  # without .md, as in the sample resource
        sources = [{"name": "certidoes", "url": certidoes}, {"name": "mediacao", "url": site.url}]
        agents_file(knowledgeBase={"sources": sources})
        messages, _ = run(ActionBaseConhecimento(), make_tracker("como pedir sessao de mediacao"))
        assert f"({site.url})" in messages[0]["text"]
        messages, _ = run(ActionServicosPortal(), make_tracker(QUESTION))
        assert "knowledge/certidoes.md" in messages[0]["text"]
        # Only the named sources: the glossary is not one of them.
        messages, _ = run(ActionBaseConhecimento(), make_tracker("o que é transito em julgado"))
        assert "glossario" not in "".join(m.get("text") or "" for m in messages)
    finally:
        site.close()
    agents_file(knowledgeBase={"sources": [{"name": "x", "url": "file:///nao/existe"}]})
    with pytest.raises(KnowledgeSourceError, match="not found"):
        run(ActionBaseConhecimento(), make_tracker("certidao"))
