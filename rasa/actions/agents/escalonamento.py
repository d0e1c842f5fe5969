"""Escalation agent: hands the conversation to the app's level-2 queue of the right team.

The app's worker reacts to the custom payload ``{"type": "escalation", ...}``: it queues the
conversation for that team, tells the citizen their position and expected wait, and keeps the
bot silent while a human owns the conversation.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.agents.common import (
    SLOT_PENDING,
    TEAM_NAMES,
    TEAMS,
    current_team,
    message_metadata,
)


def escalate(
    dispatcher: CollectingDispatcher, tracker: Tracker, team: str, reason: str
) -> list[EventType]:
    if team not in TEAMS:
        team = "geral"
    protocol = message_metadata(tracker).get("protocol")
    text = (
        f"Vou transferir você para um atendente humano da equipe de {TEAM_NAMES[team]}. "
        "Aguarde um momento: a conversa continua por aqui."
    )
    if protocol:
        text += f" Seu protocolo é {protocol}."
    dispatcher.utter_message(text=text)
    dispatcher.utter_message(json_message={"type": "escalation", "team": team, "reason": reason})
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
