"""Answers "sim"/"não" according to the yes/no question the bot asked last.

One action instead of a rule per (question, answer) pair keeps the dialogue data small and puts
the decision where it can be unit tested.
"""

from __future__ import annotations

from typing import Any

from assistente_contract import team_label
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import responses
from actions.agents.common import (
    PENDING_OFFER_HUMAN,
    PENDING_RESOLVED,
    SLOT_FAILED_TURNS,
    SLOT_PENDING,
    agent_config,
    current_team,
    failed_turns,
)
from actions.agents.escalonamento import escalate


class ActionResponderConfirmacao(Action):
    def name(self) -> str:
        return "action_responder_confirmacao"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        pending = tracker.get_slot(SLOT_PENDING)
        said_yes = (tracker.latest_message.get("intent") or {}).get("name") == "afirmar"
        team = current_team(tracker)
        if pending == PENDING_RESOLVED and said_yes:
            dispatcher.utter_message(response=responses.GLAD)
            return [SlotSet(SLOT_PENDING, None), SlotSet(SLOT_FAILED_TURNS, 0)]
        if pending == PENDING_RESOLVED:
            failed = failed_turns(tracker) + 1
            if failed >= agent_config(team).max_failed_turns:
                return [
                    SlotSet(SLOT_FAILED_TURNS, 0),
                    *escalate(dispatcher, tracker, team, "Assistente não resolveu"),
                ]
            dispatcher.utter_message(response=responses.OFFER_HUMAN, nome_equipe=team_label(team))
            return [SlotSet(SLOT_PENDING, PENDING_OFFER_HUMAN), SlotSet(SLOT_FAILED_TURNS, failed)]
        if pending == PENDING_OFFER_HUMAN and said_yes:
            return escalate(
                dispatcher, tracker, team, "Assistente não resolveu; cidadão aceitou atendente"
            )
        if pending == PENDING_OFFER_HUMAN:
            dispatcher.utter_message(response=responses.NEVER_MIND)
            return [SlotSet(SLOT_PENDING, None)]
        dispatcher.utter_message(response=responses.HOW_CAN_I_HELP)
        return []
