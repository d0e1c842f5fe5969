"""Answers "sim"/"não" according to the yes/no question the bot asked last.

One action instead of a rule per (question, answer) pair keeps the dialogue data small and puts
the decision where it can be unit tested.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.agents.common import (
    PENDING_OFFER_HUMAN,
    PENDING_RESOLVED,
    SLOT_PENDING,
    TEAM_NAMES,
    YES_NO_BUTTONS,
    current_team,
)
from actions.agents.escalonamento import escalate

GLAD = "Que bom que ajudei! Posso ajudar em mais alguma coisa?"
NEVER_MIND = (
    "Tudo bem. Se quiser, escreva a sua dúvida com outras palavras ou escolha um assunto: "
    "consulta de processo, certidões, custas, Balcão Virtual, petições ou suporte técnico."
)
HOW_CAN_I_HELP = "Certo! Em que posso ajudar?"


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
            dispatcher.utter_message(text=GLAD)
            return [SlotSet(SLOT_PENDING, None)]
        if pending == PENDING_RESOLVED:
            dispatcher.utter_message(
                text=(
                    "Sinto muito que a resposta não tenha resolvido. Quer que eu transfira você "
                    f"para um atendente da equipe de {TEAM_NAMES[team]}?"
                ),
                buttons=YES_NO_BUTTONS,
            )
            return [SlotSet(SLOT_PENDING, PENDING_OFFER_HUMAN)]
        if pending == PENDING_OFFER_HUMAN and said_yes:
            return escalate(
                dispatcher, tracker, team, "Assistente não resolveu; cidadão aceitou atendente"
            )
        if pending == PENDING_OFFER_HUMAN:
            dispatcher.utter_message(text=NEVER_MIND)
            return [SlotSet(SLOT_PENDING, None)]
        dispatcher.utter_message(text=HOW_CAN_I_HELP)
        return []
