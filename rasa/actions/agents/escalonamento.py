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
from actions.agents.common import SLOT_PENDING, current_team, message_metadata


def escalate(
    dispatcher: CollectingDispatcher, tracker: Tracker, team: str, reason: str
) -> list[EventType]:
    escalation = Escalation(team=as_team(team), reason=reason)
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
