"""Escalation agent: hands the conversation to the app's level-2 queue of the right team.

The app's worker reacts to the contract's escalation payload (``assistente_contract.Escalation``):
it queues the conversation for that team, tells the citizen their position and expected wait, and
keeps the bot silent while a human owns the conversation.
"""

from __future__ import annotations

from typing import Any

from assistente_contract import Escalation, as_team, team_label
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import responses
from actions.agents.common import (
    SLOT_CASE_NUMBER,
    SLOT_PENDING,
    current_team,
    message_metadata,
)

# Turns of the dialogue itself, which say nothing about the citizen's matter.
CONVERSATIONAL_INTENTS = frozenset(
    {"falar_com_atendente", "afirmar", "negar", "saudacao", "agradecimento", "despedida"}
)


def last_topic(tracker: Tracker) -> str:
    """The last intent that was about the citizen's matter, for the clerk's summary (the
    request for a person itself when there was nothing else)."""
    intents = [
        str((event.get("parse_data") or {}).get("intent", {}).get("name") or "")
        for event in tracker.events
        if event.get("event") == "user"
    ]
    intents.append(str((tracker.latest_message.get("intent") or {}).get("name") or ""))
    topical = [name for name in intents if name and name not in CONVERSATIONAL_INTENTS]
    return topical[-1] if topical else next((n for n in reversed(intents) if n), "")


def escalate(
    dispatcher: CollectingDispatcher, tracker: Tracker, team: str, reason: str
) -> list[EventType]:
    escalation = Escalation(
        team=as_team(team),
        reason=reason,
        intent=last_topic(tracker),
        case_number=str(tracker.get_slot(SLOT_CASE_NUMBER) or ""),
    )
    protocol = message_metadata(tracker).get("protocol")
    if protocol:
        dispatcher.utter_message(
            response=responses.TRANSFER_WITH_PROTOCOL,
            nome_equipe=team_label(escalation.team),
            protocolo=str(protocol),
        )
    else:
        dispatcher.utter_message(
            response=responses.TRANSFER, nome_equipe=team_label(escalation.team)
        )
    dispatcher.utter_message(json_message=escalation.to_payload())
    return [SlotSet(SLOT_PENDING, None)]


class ActionEscalarAtendimento(Action):
    """`falar_com_atendente` always ends here: the citizen asked for a person."""

    def name(self) -> str:
        return "action_escalar_atendimento"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return escalate(
            dispatcher,
            tracker,
            current_team(tracker),
            "Cidadão pediu para falar com um atendente",
        )
