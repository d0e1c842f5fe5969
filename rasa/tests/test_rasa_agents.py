from __future__ import annotations

import asyncio
from typing import Any

from actions import (
    ActionBaseConhecimento,
    ActionConsultarProcesso,
    ActionEscalarAtendimento,
    ActionOrientacaoProcessual,
    ActionResponderConfirmacao,
    ActionServicosPortal,
    ActionSuporteTecnico,
)
from assistente_testbed.fake_datajud import FakeDataJud, case_source
from conftest import make_tracker
from domain_responses import render
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

VALID = "0000832-35.2018.4.01.3202"
VALID_DIGITS = "00008323520184013202"


def run(action: Action, tracker: Tracker) -> tuple[list[dict[str, Any]], list[Any]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return [render(message) for message in dispatcher.messages], events


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(message.get("text") or "" for message in messages)


def payloads(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message["custom"] for message in messages if message.get("custom")]


def number_entity(value: str) -> list[dict[str, Any]]:
    return [{"entity": "numero_processo", "value": value, "start": 0, "end": len(value)}]


# --- procedural lookup --------------------------------------------------------------------------


def test_lookup_explains_latest_movements_in_plain_language(datajud: FakeDataJud) -> None:
    datajud.add("trf1", case_source(VALID_DIGITS, tribunal="TRF1"))
    tracker = make_tracker(f"processo {VALID}", entities=number_entity(VALID))
    messages, events = run(ActionConsultarProcesso(), tracker)
    text = texts(messages)
    assert f"Encontrei o processo {VALID}" in text
    assert "01/02/2024 — Conclusão (para despacho)" in text
    assert "enviado ao juiz" in text  # the plain explanation of "Conclusão"
    assert text.index("Conclusão") < text.index("Juntada") < text.index("Distribuição")
    assert SlotSet("numero_processo", VALID) in events


def test_lookup_accepts_digits_only(datajud: FakeDataJud) -> None:
    datajud.add("trf1", case_source(VALID_DIGITS, tribunal="TRF1"))
    messages, _ = run(
        ActionConsultarProcesso(), make_tracker(VALID_DIGITS, entities=number_entity(VALID_DIGITS))
    )
    assert f"Encontrei o processo {VALID}" in texts(messages)


def test_invalid_check_digits_are_explained_without_calling_datajud(datajud: FakeDataJud) -> None:
    wrong = "0000832-36.2018.4.01.3202"
    messages, events = run(
        ActionConsultarProcesso(), make_tracker(wrong, entities=number_entity(wrong))
    )
    assert "não é válido" in texts(messages)
    assert "dígitos verificadores" in texts(messages)
    assert datajud.requests == []
    assert SlotSet("numero_processo", None) in events


def test_short_number_reports_the_digit_count(datajud: FakeDataJud) -> None:
    messages, _ = run(
        ActionConsultarProcesso(), make_tracker("meu processo 0000832-35.2018.4.01.320")
    )
    assert "tem 19 dígitos" in texts(messages)
    assert datajud.requests == []


def test_no_number_asks_for_it(datajud: FakeDataJud) -> None:
    messages, _ = run(ActionConsultarProcesso(), make_tracker("quero ver meu processo"))
    assert "me envie o número do processo" in texts(messages)


def test_not_found_sealed_and_unavailable(datajud: FakeDataJud) -> None:
    tracker = make_tracker(VALID, entities=number_entity(VALID))
    messages, _ = run(ActionConsultarProcesso(), tracker)
    assert "Não encontrei o processo" in texts(messages)
    assert "segredo de justiça" in texts(messages)

    datajud.add("trf1", case_source(VALID_DIGITS, tribunal="TRF1", secrecy=3))
    messages, _ = run(ActionConsultarProcesso(), tracker)
    assert "sob sigilo" in texts(messages)
    assert "Conclusão" not in texts(messages)

    datajud.failures_before_success = 10
    messages, events = run(ActionConsultarProcesso(), tracker)
    assert "não está respondendo" in texts(messages)
    assert SlotSet("pergunta_pendente", "oferta_atendente") in events


def test_stf_numbers_are_explained_as_outside_datajud(datajud: FakeDataJud) -> None:
    from actions import cnj

    base = "0001234" + "2020" + "1" + "00" + "0000"
    stf = base[:7] + cnj.expected_check_digits(base) + base[7:]
    messages, _ = run(ActionConsultarProcesso(), make_tracker(stf, entities=number_entity(stf)))
    assert "Supremo Tribunal Federal" in texts(messages)
    assert datajud.requests == []


# --- knowledge-base agents ----------------------------------------------------------------------


def test_knowledge_answer_cites_its_source() -> None:
    messages, events = run(
        ActionServicosPortal(), make_tracker("como tiro certidao negativa criminal")
    )
    assert "Fonte: Certidões — Certidão negativa (nada consta) (knowledge/certidoes.md)" in texts(
        messages
    )
    sources = [p for p in payloads(messages) if p["type"] == "sources"]
    assert sources[0]["sources"][0]["path"] == "knowledge/certidoes.md"
    assert SlotSet("pergunta_pendente", "resolveu") in events
    assert SlotSet("equipe", "servicos_portal") in events


def test_topic_agent_falls_back_to_the_whole_knowledge_base() -> None:
    # Asked through the support intent, answered from the glossary.
    messages, _ = run(ActionSuporteTecnico(), make_tracker("o que é transito em julgado"))
    assert "knowledge/glossario.md" in texts(messages)


def test_vague_request_gets_the_topic_menu() -> None:
    messages, events = run(ActionSuporteTecnico(), make_tracker("preciso de suporte técnico"))
    assert "Conte o que está acontecendo" in texts(messages)
    assert SlotSet("equipe", "suporte_tecnico") in events


def test_unknown_question_declines_and_offers_a_human() -> None:
    messages, events = run(ActionBaseConhecimento(), make_tracker("receita de bolo de cenoura"))
    assert "Não encontrei" in texts(messages)
    assert "Fonte:" not in texts(messages)
    assert SlotSet("pergunta_pendente", "oferta_atendente") in events


def test_orientation_agent_explains_terms() -> None:
    messages, _ = run(ActionOrientacaoProcessual(), make_tracker("o que quer dizer concluso"))
    assert "enviado ao juiz" in texts(messages)


# --- confirmation and escalation ----------------------------------------------------------------


def test_escalation_sends_the_payload_the_worker_expects() -> None:
    tracker = make_tracker(
        "quero falar com um atendente",
        intent="falar_com_atendente",
        slots={"equipe": "suporte_tecnico"},
        metadata={"protocol": "AD-2025-000123", "channel": "web", "conversation_id": "c1"},
    )
    messages, events = run(ActionEscalarAtendimento(), tracker)
    assert payloads(messages) == [
        {
            "type": "escalation",
            "team": "suporte_tecnico",
            "reason": "Cidadão pediu para falar com um atendente",
            "intent": "falar_com_atendente",
        }
    ]
    assert "AD-2025-000123" in texts(messages)
    assert "atendente humano" in texts(messages)
    assert SlotSet("pergunta_pendente", None) in events


def test_escalation_summarises_the_matter_for_the_clerk() -> None:
    """The clerk sees what the citizen last asked about and the case number, not the request
    for a person that ended the bot's part."""
    tracker = make_tracker(
        "sim",
        intent="afirmar",
        slots={"equipe": "orientacao_processual", "numero_processo": "0000832-35.2018.4.01.3202"},
    )
    tracker.events = [
        {"event": "user", "parse_data": {"intent": {"name": "saudacao"}}},
        {"event": "user", "parse_data": {"intent": {"name": "consultar_processo"}}},
        {"event": "user", "parse_data": {"intent": {"name": "negar"}}},
    ]
    messages, _ = run(ActionEscalarAtendimento(), tracker)
    payload = payloads(messages)[0]
    assert payload["intent"] == "consultar_processo"
    assert payload["case_number"] == "0000832-35.2018.4.01.3202"


def test_escalation_without_context_goes_to_the_general_team() -> None:
    messages, _ = run(ActionEscalarAtendimento(), make_tracker("atendente"))
    assert payloads(messages)[0]["team"] == "geral"


def test_no_after_an_answer_offers_a_human_and_yes_escalates() -> None:
    slots = {"equipe": "servicos_portal", "pergunta_pendente": "resolveu"}
    messages, events = run(
        ActionResponderConfirmacao(), make_tracker("nao", intent="negar", slots=slots)
    )
    assert "Quer que eu transfira" in texts(messages)
    assert SlotSet("pergunta_pendente", "oferta_atendente") in events

    slots["pergunta_pendente"] = "oferta_atendente"
    messages, _ = run(
        ActionResponderConfirmacao(), make_tracker("sim", intent="afirmar", slots=slots)
    )
    assert payloads(messages)[0]["type"] == "escalation"
    assert payloads(messages)[0]["team"] == "servicos_portal"


def test_yes_after_an_answer_and_no_to_the_offer_do_not_escalate() -> None:
    messages, _ = run(
        ActionResponderConfirmacao(),
        make_tracker("sim", intent="afirmar", slots={"pergunta_pendente": "resolveu"}),
    )
    assert "Que bom" in texts(messages)
    messages, _ = run(
        ActionResponderConfirmacao(),
        make_tracker("nao", intent="negar", slots={"pergunta_pendente": "oferta_atendente"}),
    )
    assert payloads(messages) == []
    assert "Tudo bem" in texts(messages)
