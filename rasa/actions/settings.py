"""Every setting the action server reads, in one place: environment variables, and the agents
file the operator mounts from the custom resource's ``agents`` (``AGENTS_FILE``).

In Kubernetes these come from the Deployment's env; the DataJud API key comes from a Secret
(``secretKeyRef``), never from a ConfigMap or the custom resource.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistente_contract import Team

DEFAULT_DATAJUD_BASE_URL = "https://api-publica.datajud.cnj.jus.br"
# Next to the actions package in the repo and in the action-server image (/app/knowledge).
DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"
DEFAULT_KNOWLEDGE_THRESHOLD = 0.55
# What a deployed action server needs (the operator's settings contract test checks that its
# builders provide each); locally the lookups simply say DataJud is unavailable without a key.
REQUIRED_IN_PRODUCTION = ("DATAJUD_API_KEY", "AGENTS_FILE")

# The custom resource's agents (camelCase, as the operator writes them) and the team each serves.
AGENT_TEAMS: dict[str, Team] = {
    "technicalSupport": "suporte_tecnico",
    "portalServices": "servicos_portal",
    "proceduralGuidance": "orientacao_processual",
    "knowledgeBase": "geral",
}


class AgentsFileError(ValueError):
    """The agents file is missing, not JSON, or has a field the action server does not know."""


@dataclass(frozen=True)
class AgentConfig:
    enabled: bool = True
    """Off: the agent does not answer; its topic goes to the team's humans."""
    escalation_threshold: float = 0.40
    """NLU confidence under which the agent offers a human instead of answering."""
    max_failed_turns: int = 2
    """Unhelpful turns in a row after which the agent escalates without asking."""


@dataclass(frozen=True)
class KnowledgeSource:
    name: str
    url: str
    """file:// (a folder or a Markdown file inside the image) or https:// (a Markdown file)."""


@dataclass(frozen=True)
class AgentsConfig:
    by_team: dict[str, AgentConfig] = field(default_factory=dict)
    knowledge_sources: tuple[KnowledgeSource, ...] = ()
    knowledge_min_score: float | None = None

    def for_team(self, team: str) -> AgentConfig:
        return self.by_team.get(team, AgentConfig())

    @classmethod
    def from_file(cls, path: Path) -> AgentsConfig:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AgentsFileError(f"agents file {path}: {exc}") from exc
        return cls.from_document(document, origin=str(path))

    @classmethod
    def from_document(cls, document: Any, *, origin: str = "agents") -> AgentsConfig:
        if not isinstance(document, dict) or set(document) - set(AGENT_TEAMS):
            raise AgentsFileError(f"{origin}: expected the keys {sorted(AGENT_TEAMS)}")
        by_team: dict[str, AgentConfig] = {}
        sources: tuple[KnowledgeSource, ...] = ()
        min_score = None
        for key, team in AGENT_TEAMS.items():
            agent = dict(document.get(key) or {})
            if key == "knowledgeBase":
                sources = tuple(KnowledgeSource(**s) for s in agent.pop("sources", []))
                if "minScore" in agent:
                    min_score = float(agent.pop("minScore")) / 100
            unknown = set(agent) - {"enabled", "escalationThreshold", "maxFailedTurns"}
            if unknown:
                raise AgentsFileError(f"{origin}: {key} has unknown fields {sorted(unknown)}")
            by_team[team] = AgentConfig(
                enabled=bool(agent.get("enabled", True)),
                escalation_threshold=float(agent.get("escalationThreshold", 40)) / 100,
                max_failed_turns=int(agent.get("maxFailedTurns", 2)),
            )
        return cls(by_team=by_team, knowledge_sources=sources, knowledge_min_score=min_score)


@dataclass(frozen=True)
class Settings:
    datajud_base_url: str
    datajud_api_key: str
    datajud_timeout_s: float
    datajud_attempts: int
    knowledge_dir: Path
    knowledge_threshold: float
    agents: AgentsConfig = AgentsConfig()

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        agents_file = env.get("AGENTS_FILE")
        agents = AgentsConfig.from_file(Path(agents_file)) if agents_file else AgentsConfig()
        threshold = float(env.get("KNOWLEDGE_MIN_CONFIDENCE", str(DEFAULT_KNOWLEDGE_THRESHOLD)))
        return cls(
            datajud_base_url=env.get("DATAJUD_BASE_URL", DEFAULT_DATAJUD_BASE_URL).rstrip("/"),
            datajud_api_key=env.get("DATAJUD_API_KEY", ""),
            datajud_timeout_s=float(env.get("DATAJUD_TIMEOUT_SECONDS", "8")),
            datajud_attempts=int(env.get("DATAJUD_ATTEMPTS", "3")),
            knowledge_dir=Path(env.get("KNOWLEDGE_DIR", str(DEFAULT_KNOWLEDGE_DIR))),
            # The custom resource's knowledgeBase.minScore, when mounted, wins over the env.
            knowledge_threshold=(
                agents.knowledge_min_score if agents.knowledge_min_score is not None else threshold
            ),
            agents=agents,
        )
