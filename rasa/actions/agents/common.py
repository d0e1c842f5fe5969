"""Helpers shared by the agents: slot names, settings, the knowledge base, message metadata.

Teams and their names come from the app ⇄ Rasa contract (``assistente_contract``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from assistente_contract import DEFAULT_TEAM, Team, as_team
from rasa_sdk import Tracker

from actions.clients.knowledge_sources import passages_of
from actions.knowledge.retriever import KnowledgeBase
from actions.settings import AgentConfig, KnowledgeSource, Settings

SLOT_TEAM = "equipe"
SLOT_PENDING = "pergunta_pendente"
SLOT_CASE_NUMBER = "numero_processo"
SLOT_FAILED_TURNS = "tentativas_sem_sucesso"
# Values of SLOT_PENDING: the yes/no question the bot asked last.
PENDING_RESOLVED = "resolveu"
PENDING_OFFER_HUMAN = "oferta_atendente"


def settings() -> Settings:
    # Read on each call: cheap, and tests can change the environment between actions.
    return Settings.from_env()


@lru_cache(maxsize=4)
def _knowledge_base(folder: Path, sources: tuple[KnowledgeSource, ...]) -> KnowledgeBase:
    if sources:
        return KnowledgeBase(passages_of(sources))
    return KnowledgeBase.from_folder(folder)


def knowledge_base() -> KnowledgeBase:
    """The custom resource's knowledge sources when it names any, else the knowledge folder."""
    config = settings()
    return _knowledge_base(config.knowledge_dir, config.agents.knowledge_sources)


def agent_config(team: str) -> AgentConfig:
    """How the court configured the agent serving ``team`` (custom resource ``agents``)."""
    return settings().agents.for_team(team)


def failed_turns(tracker: Tracker) -> int:
    """Unhelpful turns in a row so far (slot ``tentativas_sem_sucesso``)."""
    return int(tracker.get_slot(SLOT_FAILED_TURNS) or 0)


def intent_confidence(tracker: Tracker) -> float:
    intent = tracker.latest_message.get("intent") or {}
    return float(intent.get("confidence") or 0.0)


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    """The metadata the worker sent with the latest message (protocol, channel, conversation)."""
    metadata = tracker.latest_message.get("metadata") or {}
    return metadata if isinstance(metadata, dict) else {}


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def current_team(tracker: Tracker) -> Team:
    """The team of the current topic (slot ``equipe``); the general team without one."""
    return as_team(tracker.get_slot(SLOT_TEAM) or DEFAULT_TEAM)
