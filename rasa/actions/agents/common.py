"""Helpers shared by the agents: slot names, settings, the knowledge base, message metadata.

Teams and their names come from the app ⇄ Rasa contract (``assistente_contract``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from assistente_contract import DEFAULT_TEAM, Team, as_team
from rasa_sdk import Tracker

from actions.knowledge.retriever import KnowledgeBase
from actions.settings import Settings

SLOT_TEAM = "equipe"
SLOT_PENDING = "pergunta_pendente"
SLOT_CASE_NUMBER = "numero_processo"
# Values of SLOT_PENDING: the yes/no question the bot asked last.
PENDING_RESOLVED = "resolveu"
PENDING_OFFER_HUMAN = "oferta_atendente"


def settings() -> Settings:
    # Read on each call: cheap, and tests can change the environment between actions.
    return Settings.from_env()


@lru_cache(maxsize=4)
def _knowledge_base(folder: Path) -> KnowledgeBase:
    return KnowledgeBase.from_folder(folder)


def knowledge_base() -> KnowledgeBase:
    return _knowledge_base(settings().knowledge_dir)


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    """The metadata the worker sent with the latest message (protocol, channel, conversation)."""
    metadata = tracker.latest_message.get("metadata") or {}
    return metadata if isinstance(metadata, dict) else {}


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def current_team(tracker: Tracker) -> Team:
    """The team of the current topic (slot ``equipe``); the general team without one."""
    return as_team(tracker.get_slot(SLOT_TEAM) or DEFAULT_TEAM)
