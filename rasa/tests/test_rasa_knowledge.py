from __future__ import annotations

import pytest
from actions.knowledge.retriever import KnowledgeBase
from actions.knowledge.text import terms
from actions.settings import DEFAULT_KNOWLEDGE_DIR

THRESHOLD = 0.55


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_folder(DEFAULT_KNOWLEDGE_DIR)


def test_accents_and_case_fold_to_the_same_stem() -> None:
    assert terms("Certidão") == terms("certidao")
    assert terms("certidões") == terms("certidoes")
    assert terms("Balcão Virtual") == terms("balcao virtual")


def test_stopwords_do_not_count() -> None:
    assert terms("o que é que eu faço com isso") == terms("faço")


@pytest.mark.parametrize(
    ("question", "doc", "heading_word"),
    [
        ("como tiro certidao negativa criminal", "knowledge/certidoes.md", "negativa"),
        ("o q significa concluso pra despacho", "knowledge/glossario.md", "Concluso"),
        ("meu certificado digital nao e reconhecido no pje", "knowledge/pje.md", "Certificado"),
        ("qual o horario do balcão virtual", "knowledge/balcao-virtual.md", "Horário"),
        ("esqueci minha senha", "knowledge/pje.md", "senha"),
        ("o que e transito em julgado", "knowledge/glossario.md", "julgado"),
        ("como pedir justica gratuita", "knowledge/custas.md", "Gratuidade"),
        ("onde encontro o numero do meu processo", "knowledge/numero-processo.md", "encontro"),
        # Longer, chattier questions with words the documents do not use:
        ("preciso de advogado para processar uma loja", "knowledge/peticionamento.md", "advogado"),
        ("quanto tempo vale uma certidao negativa", "knowledge/certidoes.md", "validade"),
        ("como faço pra pagar a guia de custas do tj", "knowledge/custas.md", "guia"),
        ("fui citado, o que devo fazer", "knowledge/glossario.md", "Citação"),
        (
            "o token do meu certificado nao funciona no computador novo",
            "knowledge/pje.md",
            "Certificado",
        ),
        ("nao consigo anexar um pdf de 15mb", "knowledge/pje.md", "Arquivos"),
    ],
)
def test_questions_reach_the_right_passage(
    kb: KnowledgeBase, question: str, doc: str, heading_word: str
) -> None:
    best = kb.search(question, limit=1)[0]
    assert best.passage.doc_path == doc
    assert heading_word in best.passage.heading
    assert best.confidence >= THRESHOLD


@pytest.mark.parametrize(
    "question",
    [
        "qual a capital da franca",
        "receita de bolo de cenoura",
        "quero pedir uma pizza de calabresa",
        "quem vai ganhar o campeonato brasileiro",
        # One shared word is not enough:
        "como tirar passaporte",
        "qual o telefone do tribunal",
        "meu vizinho faz barulho a noite",
        "onde fica o forum da minha cidade",
    ],
)
def test_unrelated_questions_stay_below_threshold(kb: KnowledgeBase, question: str) -> None:
    answers = kb.search(question, limit=1)
    assert not answers or answers[0].confidence < THRESHOLD


def test_team_filter_restricts_passages(kb: KnowledgeBase) -> None:
    answers = kb.search("certidao negativa", teams=frozenset({"suporte_tecnico"}), limit=5)
    assert all(answer.passage.team == "suporte_tecnico" for answer in answers)
