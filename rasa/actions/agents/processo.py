"""Procedural lookup agent: validates a CNJ number and explains its latest DataJud movements.

Every sentence the citizen reads is a response of rasa/domain/processo.yml; this module chooses
the response and fills its variables."""

from __future__ import annotations

from typing import Any

from assistente_contract import Team
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import cnj, responses
from actions.agents.common import (
    PENDING_OFFER_HUMAN,
    SLOT_CASE_NUMBER,
    SLOT_PENDING,
    SLOT_TEAM,
    agent_config,
    latest_text,
    settings,
)
from actions.agents.escalonamento import escalate
from actions.clients.datajud import DataJudClient, Outcome
from actions.plain_language import describe_case

# The procedural-guidance agent's team: where this topic's humans are.
TEAM: Team = "orientacao_processual"

_PROBLEM_RESPONSE = {
    cnj.Problem.CHECK_DIGITS: responses.WRONG_CHECK_DIGITS,
    cnj.Problem.UNKNOWN_SEGMENT: responses.UNKNOWN_SEGMENT,
    cnj.Problem.UNKNOWN_TRIBUNAL: responses.UNKNOWN_TRIBUNAL,
    cnj.Problem.IMPLAUSIBLE_YEAR: responses.IMPLAUSIBLE_YEAR,
}


def _pretty(digits: str) -> str:
    if len(digits) == 20:
        return (
            f"{digits[0:7]}-{digits[7:9]}.{digits[9:13]}.{digits[13]}.{digits[14:16]}.{digits[16:]}"
        )
    return digits


class ActionConsultarProcesso(Action):
    def name(self) -> str:
        return "action_consultar_processo"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if not agent_config(TEAM).enabled:
            return [
                SlotSet(SLOT_TEAM, TEAM),
                *escalate(dispatcher, tracker, TEAM, "Tema atendido só por pessoas"),
            ]
        typed = next(tracker.get_latest_entity_values(SLOT_CASE_NUMBER), None)
        if typed is None:
            # The entity regex wants exactly 20 digits; look for near misses to explain them.
            candidates = cnj.find_candidates(latest_text(tracker))
            if not candidates:
                dispatcher.utter_message(response=responses.ASK_CASE_NUMBER)
                return [SlotSet(SLOT_TEAM, TEAM)]
            typed = candidates[0]
        digits = cnj.digits_only(str(typed))
        try:
            number = cnj.parse(digits)
        except cnj.InvalidCaseNumberError as error:
            if error.problem is cnj.Problem.WRONG_LENGTH:
                dispatcher.utter_message(
                    response=responses.WRONG_LENGTH, quantidade_digitos=str(len(error.digits))
                )
            else:
                dispatcher.utter_message(
                    response=_PROBLEM_RESPONSE[error.problem], numero=_pretty(error.digits)
                )
            return [SlotSet(SLOT_CASE_NUMBER, None), SlotSet(SLOT_TEAM, TEAM)]

        config = settings()
        client = DataJudClient(
            config.datajud_base_url,
            config.datajud_api_key,
            timeout_s=config.datajud_timeout_s,
            attempts=config.datajud_attempts,
        )
        result = await client.lookup(number)
        events: list[EventType] = [
            SlotSet(SLOT_CASE_NUMBER, number.formatted),
            SlotSet(SLOT_TEAM, TEAM),
        ]
        if result.outcome is Outcome.FOUND and result.record is not None:
            details = describe_case(result.record, other_degrees=result.other_degrees)
            dispatcher.utter_message(
                response=responses.CASE_FOUND, numero=number.formatted, detalhes=details
            )
            dispatcher.utter_message(response=responses.ASK_ABOUT_TERMS)
            return events
        if result.outcome is Outcome.NOT_FOUND:
            dispatcher.utter_message(response=responses.CASE_NOT_FOUND, numero=number.formatted)
            return events
        if result.outcome is Outcome.SEALED:
            dispatcher.utter_message(response=responses.CASE_SEALED, numero=number.formatted)
            return events
        if result.outcome is Outcome.UNSUPPORTED_TRIBUNAL:
            dispatcher.utter_message(
                response=responses.CASE_OUTSIDE_DATAJUD,
                numero=number.formatted,
                ramo=number.segment_name,
            )
            return events
        # UNAVAILABLE or UNAUTHORIZED: for the citizen both mean "try later or talk to a person".
        dispatcher.utter_message(response=responses.DATAJUD_UNAVAILABLE)
        return [*events, SlotSet(SLOT_PENDING, PENDING_OFFER_HUMAN)]
