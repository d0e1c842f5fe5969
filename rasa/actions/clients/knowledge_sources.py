"""Reads the knowledge sources the custom resource names (``agents.knowledgeBase.sources``)."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from actions.knowledge.retriever import Passage, document_passages, load_passages
from actions.settings import KnowledgeSource

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 10


class KnowledgeSourceError(ValueError):
    """A source that cannot be read: the action server refuses to answer from a partial base."""


def source_passages(source: KnowledgeSource) -> list[Passage]:
    url = urlsplit(source.url)
    if url.scheme == "file":
        path = Path(unquote(url.path))
        if path.is_dir():
            return load_passages(path)
        if not path.exists() and path.with_suffix(".md").exists():
            path = path.with_suffix(".md")
        if not path.is_file():
            raise KnowledgeSourceError(f"knowledge source {source.name}: {path} not found")
        raw = path.read_text(encoding="utf-8")
        return document_passages(raw, path=f"{path.parent.name}/{path.name}", stem=path.stem)
    if url.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(source.url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 (the court's own documents)
                raw = response.read().decode("utf-8")
        except OSError as exc:
            raise KnowledgeSourceError(f"knowledge source {source.name}: {exc}") from exc
        stem = Path(url.path).stem or source.name
        return document_passages(raw, path=source.url, stem=stem)
    raise KnowledgeSourceError(f"knowledge source {source.name}: unsupported URL {source.url}")


def passages_of(sources: tuple[KnowledgeSource, ...]) -> list[Passage]:
    passages: list[Passage] = []
    for source in sources:
        found = source_passages(source)
        log.info("knowledge source %s: %d passage(s)", source.name, len(found))
        passages += found
    return passages
