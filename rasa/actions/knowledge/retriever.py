"""A small BM25 retriever over the project's own Markdown documentation (rasa/knowledge/*.md).

Each ``## section`` of a document is one passage. A document starts with a front matter block::

    ---
    titulo: Certidões
    equipe: servicos_portal
    ---

``equipe`` is the level-2 team that owns the topic (used to filter by agent and to escalate). A
section may carry a ``Palavras-chave:`` line with the words citizens use for it; it is indexed
but never shown.

Confidence is not the BM25 score (unbounded, corpus dependent) but the IDF-weighted share of the
question's content terms that the passage contains: 1.0 when every meaningful word of the
question appears in it, low when the passage matched on one common word only. A passage that
shares a single word with a question of several words gets half that share: one coincidence
("tirar" in "como tirar passaporte") is not evidence. The agents decline below a threshold
instead of answering something loosely related.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from actions.knowledge.text import terms

log = logging.getLogger(__name__)

_KEYWORDS = re.compile(r"^palavras-chave:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
# BM25 parameters: the usual defaults; the passages are short and of similar length.
_K1 = 1.2
_B = 0.75
# The section heading says what the passage is about: count its words more.
_HEADING_WEIGHT = 3
_TITLE_WEIGHT = 1


@dataclass(frozen=True)
class Passage:
    doc_title: str
    doc_path: str  # relative to the knowledge folder's parent, e.g. "knowledge/certidoes.md"
    heading: str
    text: str
    team: str
    term_counts: Counter[str]
    length: int


@dataclass(frozen=True)
class Answer:
    passage: Passage
    confidence: float
    score: float


def _parse_front_matter(raw: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(raw)
    if match is None:
        return {}, raw
    fields = {}
    for line in match.group(1).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields, raw[match.end() :]


def load_passages(folder: Path) -> list[Passage]:
    passages: list[Passage] = []
    for path in sorted(folder.glob("*.md")):
        passages += document_passages(
            path.read_text(encoding="utf-8"), path=f"{folder.name}/{path.name}", stem=path.stem
        )
    return passages


def document_passages(raw: str, *, path: str, stem: str) -> list[Passage]:
    """The passages of one Markdown document; ``path`` is what citations show."""
    passages: list[Passage] = []
    fields, body = _parse_front_matter(raw)
    title = fields.get("titulo") or stem
    team = fields.get("equipe", "geral")
    # Split on level-2 headings; text before the first one is the document's introduction.
    chunks = re.split(r"^## +(.+)$", body, flags=re.MULTILINE)
    sections = [(title, chunks[0]), *zip(chunks[1::2], chunks[2::2], strict=True)]
    for heading, content in sections:
        keywords = " ".join(_KEYWORDS.findall(content))
        text = _KEYWORDS.sub("", content)
        text = re.sub(r"^# .*$", "", text, flags=re.MULTILINE).strip()
        if not text:
            continue
        indexed = (
            terms(heading) * _HEADING_WEIGHT
            + terms(title) * _TITLE_WEIGHT
            + terms(keywords)
            + terms(text)
        )
        passages.append(
            Passage(
                doc_title=title,
                doc_path=path,
                heading=heading.strip(),
                text=text,
                team=team,
                term_counts=Counter(indexed),
                length=len(indexed),
            )
        )
    return passages


class KnowledgeBase:
    def __init__(self, passages: list[Passage]) -> None:
        if not passages:
            raise ValueError("the knowledge base has no passages")
        self.passages = passages
        self._avg_length = sum(p.length for p in passages) / len(passages)
        document_frequency: Counter[str] = Counter()
        for passage in passages:
            document_frequency.update(passage.term_counts.keys())
        total = len(passages)
        self._idf = {
            term: math.log(1 + (total - df + 0.5) / (df + 0.5))
            for term, df in document_frequency.items()
        }
        # A question word the documentation never uses counts as much as a rare word: it is
        # probably what the question is really about, and we do not know it.
        self._unknown_idf = max(self._idf.values())

    @classmethod
    def from_folder(cls, folder: Path) -> KnowledgeBase:
        passages = load_passages(folder)
        log.info("knowledge base: %d passages from %s", len(passages), folder)
        return cls(passages)

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._unknown_idf)

    def search(
        self, question: str, *, teams: frozenset[str] | None = None, limit: int = 3
    ) -> list[Answer]:
        query = list(dict.fromkeys(terms(question)))  # distinct, in order
        if not query:
            return []
        total_weight = sum(self.idf(term) for term in query)
        answers = []
        for passage in self.passages:
            if teams is not None and passage.team not in teams:
                continue
            score = 0.0
            matched_weight = 0.0
            matched = 0
            for term in query:
                tf = passage.term_counts.get(term, 0)
                if tf == 0:
                    continue
                matched += 1
                matched_weight += self.idf(term)
                norm = tf + _K1 * (1 - _B + _B * passage.length / self._avg_length)
                score += self.idf(term) * tf * (_K1 + 1) / norm
            if score > 0:
                support = min(1.0, matched / min(2, len(query)))
                answers.append(Answer(passage, support * matched_weight / total_weight, score))
        answers.sort(key=lambda answer: (answer.score, answer.confidence), reverse=True)
        return answers[:limit]

    def informative_terms(self, question: str) -> list[str]:
        return list(dict.fromkeys(terms(question)))
