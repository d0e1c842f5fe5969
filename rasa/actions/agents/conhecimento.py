"""Knowledge-base agent and the topic agents built on it (technical support, portal services,
procedural guidance, petitioning).

Each answer quotes one passage of rasa/knowledge/*.md with its source, in the text and as a
``{"type": "sources"}`` payload. Below the confidence threshold the agent does not guess: it
offers a human of the team that owns the topic (the fallback chain's last step).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.agents.common import (
    PENDING_OFFER_HUMAN,
    PENDING_RESOLVED,
    SLOT_PENDING,
    SLOT_TEAM,
    TEAM_NAMES,
    YES_NO_BUTTONS,
    knowledge_base,
    latest_text,
    settings,
)
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


def source_line(answer: Answer) -> str:
    passage = answer.passage
    return f"Fonte: {passage.doc_title} — {passage.heading} ({passage.doc_path})"


class KnowledgeAgent(Action):
    """Answers from the documentation; subclasses narrow the topic and the team."""

    action_name: ClassVar[str] = "action_base_conhecimento"
    # Team to escalate to when nothing answers; also the topic filter of the first search.
    team: ClassVar[str] = "geral"
    # Words that only name the topic ("suporte técnico"): a message made only of these is a
    # request for the menu, not a question.
    generic_words: ClassVar[str] = ""
    # Shown when the citizen named the topic but asked nothing yet.
    menu_text: ClassVar[str] = ""

    def name(self) -> str:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        question = latest_text(tracker)
        kb = knowledge_base()
        generic = set(terms(self.generic_words))
        content = [term for term in kb.informative_terms(question) if term not in generic]
        if self.menu_text and not content:
            dispatcher.utter_message(text=self.menu_text)
            return [SlotSet(SLOT_TEAM, self.team), SlotSet(SLOT_PENDING, None)]

        answer = self.best_answer(question)
        if answer is None:
            dispatcher.utter_message(
                text=(
                    "Não encontrei na minha base uma resposta segura para isso. Quer que eu "
                    f"transfira você para um atendente da equipe de {TEAM_NAMES[self.team]}?"
                ),
                buttons=YES_NO_BUTTONS,
            )
            return [SlotSet(SLOT_TEAM, self.team), SlotSet(SLOT_PENDING, PENDING_OFFER_HUMAN)]

        passage = answer.passage
        dispatcher.utter_message(
            text=f"{passage.heading}:\n{_as_paragraphs(passage.text)}\n{source_line(answer)}"
        )
        dispatcher.utter_message(
            json_message={
                "type": "sources",
                "sources": [
                    {
                        "title": passage.doc_title,
                        "section": passage.heading,
                        "path": passage.doc_path,
                        "confidence": round(answer.confidence, 2),
                    }
                ],
            }
        )
        dispatcher.utter_message(text="Isso respondeu sua dúvida?", buttons=YES_NO_BUTTONS)
        team = passage.team if self.team == "geral" else self.team
        return [SlotSet(SLOT_TEAM, team), SlotSet(SLOT_PENDING, PENDING_RESOLVED)]

    def best_answer(self, question: str) -> Answer | None:
        """The topic's documents first, then all of them; None below the threshold."""
        kb = knowledge_base()
        threshold = settings().knowledge_threshold
        scopes: list[frozenset[str] | None] = [None]
        if self.team != "geral":
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
    menu_text = (
        "Posso ajudar com problemas técnicos no PJe e nos sistemas do tribunal. Conte o que está "
        'acontecendo, por exemplo: "o certificado digital não é reconhecido", "esqueci a '
        'senha", "o sistema está fora do ar" ou "não consigo anexar o arquivo".'
    )


class ActionServicosPortal(KnowledgeAgent):
    action_name = "action_servicos_portal"
    team = "servicos_portal"
    generic_words = "serviço serviços servico servicos portal site online internet"
    menu_text = (
        "Estes são os serviços do portal com que posso ajudar: certidões (como a negativa), "
        "custas e guias, gratuidade de justiça, Balcão Virtual e a plataforma Jus.br. "
        "Qual deles você procura?"
    )


class ActionOrientacaoProcessual(KnowledgeAgent):
    action_name = "action_orientacao_processual"
    team = "orientacao_processual"
    generic_words = "orientação orientacao processual dúvida processo jurídica juridica termo"
    menu_text = (
        'Posso explicar termos e etapas do processo, como "concluso para despacho", '
        '"trânsito em julgado", prazos, recursos e audiências. Qual é a sua dúvida? Para ver o '
        "andamento de um processo, me envie o número dele."
    )


class ActionPeticionamento(KnowledgeAgent):
    action_name = "action_peticionamento"
    team = "orientacao_processual"
    generic_words = "petição peticao peticionamento peticionar"
    menu_text = (
        "Sobre petições, posso explicar: quando é preciso advogado, como protocolar uma petição "
        "pela internet, a atermação no Juizado Especial e a Defensoria Pública. O que você quer "
        "saber?"
    )
