"""Knowledge-base agent and the topic agents built on it (technical support, portal services,
procedural guidance, petitioning).

Each answer quotes one passage of rasa/knowledge/*.md with its source, in the text (the domain
response ``utter_resposta_conhecimento``) and as the contract's ``sources`` payload. Below the
confidence threshold the agent does not guess: it offers a human of the team that owns the topic
(the fallback chain's last step).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from assistente_contract import DEFAULT_TEAM, Source, Team, sources_payload, team_label
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import metrics, responses
from actions.agents.common import (
    PENDING_OFFER_HUMAN,
    PENDING_RESOLVED,
    SLOT_FAILED_TURNS,
    SLOT_PENDING,
    SLOT_TEAM,
    agent_config,
    failed_turns,
    intent_confidence,
    knowledge_base,
    latest_text,
    settings,
)
from actions.agents.escalonamento import escalate
from actions.knowledge.retriever import Answer
from actions.knowledge.text import terms

MAX_ANSWER_CHARS = 900


def _as_paragraphs(text: str) -> str:
    """Markdown is hard-wrapped at 100 columns; chat bubbles wrap by themselves.

    Paragraphs are joined by a single newline: Rasa's REST channel splits a text on blank
    lines into separate messages, and the answer and its source must stay in one.
    """
    paragraphs = [re.sub(r"\s*\n\s*", " ", part).strip() for part in re.split(r"\n\s*\n", text)]
    joined = "\n".join(part for part in paragraphs if part)
    if len(joined) <= MAX_ANSWER_CHARS:
        return joined
    cut = joined[:MAX_ANSWER_CHARS].rsplit(". ", 1)[0]
    return cut + "."


class KnowledgeAgent(Action):
    """Answers from the documentation; subclasses narrow the topic and the team."""

    action_name: ClassVar[str] = "action_base_conhecimento"
    # Team to escalate to when nothing answers; also the topic filter of the first search.
    team: ClassVar[Team] = DEFAULT_TEAM
    # Words that only name the topic ("suporte técnico"): a message made only of these is a
    # request for the menu, not a question.
    generic_words: ClassVar[str] = ""
    # Response shown when the citizen named the topic but asked nothing yet.
    menu_response: ClassVar[str] = ""

    def name(self) -> str:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        config = agent_config(self.team)
        documents_on = agent_config(DEFAULT_TEAM).enabled  # the knowledge-base agent's switch
        if self.team != DEFAULT_TEAM and not config.enabled:
            # The court keeps this topic with people: straight to the team.
            return [
                SlotSet(SLOT_TEAM, self.team),
                *escalate(dispatcher, tracker, self.team, "Tema atendido só por pessoas"),
            ]
        if not documents_on:
            return self.no_answer(dispatcher, tracker)
        question = latest_text(tracker)
        kb = knowledge_base()
        generic = set(terms(self.generic_words))
        content = [term for term in kb.informative_terms(question) if term not in generic]
        if self.menu_response and not content:
            dispatcher.utter_message(response=self.menu_response)
            return [SlotSet(SLOT_TEAM, self.team), SlotSet(SLOT_PENDING, None)]

        # The fallback runs when NLU was unsure by definition; topic agents hand over below
        # their escalationThreshold.
        unsure = self.team != DEFAULT_TEAM and (
            intent_confidence(tracker) < config.escalation_threshold
        )
        answer = None if unsure else self.best_answer(question)
        if not unsure:
            metrics.KNOWLEDGE_LOOKUPS.inc(result="miss" if answer is None else "hit")
        if answer is None:
            return self.no_answer(dispatcher, tracker)

        passage = answer.passage
        dispatcher.utter_message(
            response=responses.KNOWLEDGE_ANSWER,
            secao=passage.heading,
            texto=_as_paragraphs(passage.text),
            documento=passage.doc_title,
            caminho=passage.doc_path,
        )
        source = Source(
            title=passage.doc_title,
            section=passage.heading,
            path=passage.doc_path,
            confidence=round(answer.confidence, 2),
        )
        dispatcher.utter_message(json_message=sources_payload([source]))
        dispatcher.utter_message(response=responses.DID_IT_HELP)
        team = passage.team if self.team == DEFAULT_TEAM else self.team
        return [
            SlotSet(SLOT_TEAM, team),
            SlotSet(SLOT_PENDING, PENDING_RESOLVED),
            SlotSet(SLOT_FAILED_TURNS, 0),
        ]

    def no_answer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        """Offer a human, or after maxFailedTurns unhelpful turns escalate without asking."""
        failed = failed_turns(tracker) + 1
        if failed >= agent_config(self.team).max_failed_turns:
            return [
                SlotSet(SLOT_TEAM, self.team),
                SlotSet(SLOT_FAILED_TURNS, 0),
                *escalate(dispatcher, tracker, self.team, "Assistente não encontrou resposta"),
            ]
        dispatcher.utter_message(
            response=responses.NO_SAFE_ANSWER, nome_equipe=team_label(self.team)
        )
        return [
            SlotSet(SLOT_TEAM, self.team),
            SlotSet(SLOT_PENDING, PENDING_OFFER_HUMAN),
            SlotSet(SLOT_FAILED_TURNS, failed),
        ]

    def best_answer(self, question: str) -> Answer | None:
        """The topic's documents first, then all of them; None below the threshold."""
        kb = knowledge_base()
        threshold = settings().knowledge_threshold
        scopes: list[frozenset[str] | None] = [None]
        if self.team != DEFAULT_TEAM:
            scopes.insert(0, frozenset({self.team}))
        for teams in scopes:
            answers = kb.search(question, teams=teams, limit=1)
            if answers and answers[0].confidence >= threshold:
                return answers[0]
        return None


class ActionBaseConhecimento(KnowledgeAgent):
    """The fallback chain's middle step: NLU was unsure, so try the documentation."""

    action_name = "action_base_conhecimento"
    team = "geral"


class ActionSuporteTecnico(KnowledgeAgent):
    action_name = "action_suporte_tecnico"
    team = "suporte_tecnico"
    generic_words = "suporte técnico tecnico problema problemas ajuda técnica sistema"
    menu_response = responses.MENU_SUPPORT


class ActionServicosPortal(KnowledgeAgent):
    action_name = "action_servicos_portal"
    team = "servicos_portal"
    generic_words = "serviço serviços servico servicos portal site online internet"
    menu_response = responses.MENU_PORTAL


class ActionOrientacaoProcessual(KnowledgeAgent):
    action_name = "action_orientacao_processual"
    team = "orientacao_processual"
    generic_words = "orientação orientacao processual dúvida processo jurídica juridica termo"
    menu_response = responses.MENU_GUIDANCE


class ActionPeticionamento(KnowledgeAgent):
    action_name = "action_peticionamento"
    team = "orientacao_processual"
    generic_words = "petição peticao peticionamento peticionar"
    menu_response = responses.MENU_PETITIONS
