"""Procedural lookup agent: validates a CNJ number and explains its latest DataJud movements."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import cnj
from actions.agents.common import (
    PENDING_OFFER_HUMAN,
    SLOT_CASE_NUMBER,
    SLOT_PENDING,
    SLOT_TEAM,
    YES_NO_BUTTONS,
    latest_text,
    settings,
)
from actions.clients.datajud import DataJudClient, Outcome
from actions.plain_language import describe_case

ASK_NUMBER = (
    "Para consultar o andamento, me envie o número do processo no padrão do CNJ, com 20 "
    "dígitos (NNNNNNN-DD.AAAA.J.TR.OOOO). Pode ser com ou sem pontos e traço."
)

_PROBLEM_TEXT = {
    cnj.Problem.CHECK_DIGITS: (
        "O número {number} não é válido: os dígitos verificadores (os dois números depois do "
        "traço) não conferem com o restante. Confira se não há algum dígito trocado e me envie "
        "de novo."
    ),
    cnj.Problem.UNKNOWN_SEGMENT: (
        "O número {number} não é válido: o dígito que indica o ramo da Justiça (J) não existe. "
        "Confira o número e me envie de novo."
    ),
    cnj.Problem.UNKNOWN_TRIBUNAL: (
        "O número {number} não é válido: o código do tribunal (TR) não corresponde a nenhum "
        "tribunal. Confira o número e me envie de novo."
    ),
    cnj.Problem.IMPLAUSIBLE_YEAR: (
        "O número {number} não é válido: o ano informado não é possível. Confira o número e me "
        "envie de novo."
    ),
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
        typed = next(tracker.get_latest_entity_values(SLOT_CASE_NUMBER), None)
        if typed is None:
            # The entity regex wants exactly 20 digits; look for near misses to explain them.
            candidates = cnj.find_candidates(latest_text(tracker))
            if not candidates:
                dispatcher.utter_message(text=ASK_NUMBER)
                return [SlotSet(SLOT_TEAM, "orientacao_processual")]
            typed = candidates[0]
        digits = cnj.digits_only(str(typed))
        try:
            number = cnj.parse(digits)
        except cnj.InvalidCaseNumberError as error:
            if error.problem is cnj.Problem.WRONG_LENGTH:
                text = (
                    f"O número que você enviou tem {len(error.digits)} dígitos, mas o número do "
                    "processo tem 20 (NNNNNNN-DD.AAAA.J.TR.OOOO). Confira e me envie de novo."
                )
            else:
                text = _PROBLEM_TEXT[error.problem].format(number=_pretty(error.digits))
            dispatcher.utter_message(text=text)
            return [SlotSet(SLOT_CASE_NUMBER, None), SlotSet(SLOT_TEAM, "orientacao_processual")]

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
            SlotSet(SLOT_TEAM, "orientacao_processual"),
        ]
        if result.outcome is Outcome.FOUND and result.record is not None:
            dispatcher.utter_message(
                text=describe_case(
                    result.record, number.formatted, other_degrees=result.other_degrees
                )
            )
            dispatcher.utter_message(
                text="Se algum termo não ficou claro, é só perguntar (por exemplo: o que é "
                '"concluso"?).'
            )
            return events
        if result.outcome is Outcome.NOT_FOUND:
            dispatcher.utter_message(
                text=(
                    f"Não encontrei o processo {number.formatted} na base pública do CNJ "
                    "(DataJud). Isso acontece quando o processo está em segredo de justiça, "
                    "quando é muito recente (a base recebe os dados com atraso) ou quando há um "
                    "dígito trocado. Você pode consultar no site do tribunal ou falar com a vara "
                    "pelo Balcão Virtual."
                )
            )
            return events
        if result.outcome is Outcome.SEALED:
            dispatcher.utter_message(
                text=(
                    f"O processo {number.formatted} está sob sigilo (segredo de justiça), então "
                    "não posso mostrar as movimentações. Somente as partes e seus advogados podem "
                    "consultá-lo, entrando no sistema do tribunal."
                )
            )
            return events
        if result.outcome is Outcome.UNSUPPORTED_TRIBUNAL:
            dispatcher.utter_message(
                text=(
                    f"O processo {number.formatted} é do(a) {number.segment_name}, que não está "
                    "na base pública do CNJ que eu consulto. Consulte o andamento no site do "
                    "próprio tribunal."
                )
            )
            return events
        # UNAVAILABLE or UNAUTHORIZED: for the citizen both mean "try later or talk to a person".
        dispatcher.utter_message(
            text=(
                "A consulta processual do CNJ (DataJud) não está respondendo agora. Tente de novo "
                "em alguns minutos ou consulte o site do tribunal. Quer que eu transfira você para "
                "um atendente?"
            ),
            buttons=YES_NO_BUTTONS,
        )
        return [*events, SlotSet(SLOT_PENDING, PENDING_OFFER_HUMAN)]
