"""The app ⇄ Rasa contract: what crosses between the app's worker and the Rasa actions.

One source of truth for both sides, which run in different virtualenvs (the app on pydantic 2,
Rasa on pydantic 1) and different images: this package imports nothing outside the standard
library and runs on Python 3.10 (Rasa's images) and 3.11 (the app). ``schema.json`` beside this
file is the same contract as a JSON Schema, for tools and for readers in other languages.

What crosses, over Rasa's REST channel:

* worker → Rasa: every citizen message carries ``metadata`` (:class:`MessageMetadata`);
* Rasa → worker: bot messages; two of them carry a ``custom`` payload the worker acts on:
  an escalation to a human team (:class:`Escalation`) and the knowledge sources of the answer
  just before it (:func:`sources_payload`);
* teams: the ids both sides use and the name citizens read (:data:`TEAM_LABELS`).

Versioning: this is version 1 (:data:`SCHEMA_VERSION`). Payloads of version 1 carry no
``version`` key. A change a reader of version 1 would misread adds ``"version": 2`` to the
payloads, and the worker accepts both versions until every action server has been upgraded.
Adding a team or an optional key is not such a change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, TypedDict, get_args

SCHEMA_VERSION: Final = 1

Team = Literal["suporte_tecnico", "servicos_portal", "orientacao_processual", "geral"]
TEAMS: Final[tuple[Team, ...]] = get_args(Team)
DEFAULT_TEAM: Final[Team] = "geral"
# The names citizens read ("a equipe de Serviços do Portal"); clerks see them in the console.
TEAM_LABELS: Final[Mapping[Team, str]] = {
    "suporte_tecnico": "Suporte Técnico",
    "servicos_portal": "Serviços do Portal",
    "orientacao_processual": "Orientação Processual",
    "geral": "Atendimento Geral",
}

ESCALATION: Final = "escalation"
SOURCES: Final = "sources"
MAX_REASON_CHARS: Final = 500
MAX_SUMMARY_CHARS: Final = 100


def as_team(value: object) -> Team:
    """``value`` if it names a team, else the general team (an unknown team must still reach
    a human rather than be dropped)."""
    for team in TEAMS:
        if value == team:
            return team
    return DEFAULT_TEAM


def team_label(team: str) -> str:
    return TEAM_LABELS[as_team(team)]


class MessageMetadata(TypedDict):
    """Sent by the worker with every citizen message (the REST channel's ``metadata``)."""

    protocol: str
    channel: str
    conversation_id: str


@dataclass(frozen=True)
class Escalation:
    """Hand the conversation to ``team``'s level-2 queue; ``reason`` is shown to the clerks.

    ``intent`` and ``case_number`` are the bot's summary for the clerk who takes the
    conversation: what the citizen was last talking about (the last intent that was not the
    request for a person itself) and the case number under discussion, if any. Both optional.
    """

    team: Team
    reason: str = ""
    intent: str = ""
    case_number: str = ""

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": ESCALATION,
            "team": self.team,
            "reason": self.reason[:MAX_REASON_CHARS],
        }
        if self.intent:
            payload["intent"] = self.intent[:MAX_SUMMARY_CHARS]
        if self.case_number:
            payload["case_number"] = self.case_number[:MAX_SUMMARY_CHARS]
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Escalation:
        return cls(
            team=as_team(payload.get("team")),
            reason=str(payload.get("reason") or "")[:MAX_REASON_CHARS],
            intent=str(payload.get("intent") or "")[:MAX_SUMMARY_CHARS],
            case_number=str(payload.get("case_number") or "")[:MAX_SUMMARY_CHARS],
        )


class Source(TypedDict):
    """One passage of the knowledge base an answer quotes."""

    title: str
    section: str
    path: str
    confidence: float


def sources_payload(sources: Sequence[Source]) -> dict[str, Any]:
    return {"type": SOURCES, "sources": [dict(source) for source in sources]}


def read_sources(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sources of a ``sources`` payload. Lenient: entries are kept as sent (the app stores
    and shows them), anything that is not an object is dropped."""
    items = payload.get("sources")
    if not isinstance(items, list):
        return []
    return [dict(item) for item in items if isinstance(item, dict)]


def payload_type(custom: object) -> str | None:
    """``"escalation"``, ``"sources"`` or another type of a bot message's ``custom`` payload."""
    if isinstance(custom, dict) and isinstance(custom.get("type"), str):
        return str(custom["type"])
    return None


def json_schema() -> dict[str, Any]:
    """The contract as a JSON Schema (draft 2020-12), read from the package."""
    text = (
        resources.files("assistente_contract").joinpath("schema.json").read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema
