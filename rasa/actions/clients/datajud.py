"""Client of the CNJ DataJud public API (one Elasticsearch index per tribunal).

``POST {base}/api_publica_<alias>/_search`` with ``Authorization: APIKey <key>``. The key is
public but CNJ rotates it, so it comes from the environment (a Secret in Kubernetes) and a 401/403
is reported as its own outcome for operators to alert on. The base URL is configurable so tests
run against a local fake that speaks the same wire format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import aiohttp

from actions import metrics
from actions.cnj import CaseNumber, datajud_alias

log = logging.getLogger(__name__)


class Outcome(Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    SEALED = "sealed"
    UNSUPPORTED_TRIBUNAL = "unsupported_tribunal"
    UNAUTHORIZED = "unauthorized"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Movement:
    code: int | None
    name: str
    when: str  # ISO 8601 as DataJud sends it
    complements: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseRecord:
    number: str
    tribunal: str
    degree: str
    class_name: str
    court_unit: str
    subjects: tuple[str, ...]
    filed_at: str
    updated_at: str
    movements: tuple[Movement, ...]  # newest first


@dataclass(frozen=True)
class LookupResult:
    outcome: Outcome
    record: CaseRecord | None = None
    alias: str | None = None
    other_degrees: tuple[str, ...] = field(default=())


def _result(status: int, body: dict[str, Any] | None, alias: str) -> LookupResult:
    if status in (401, 403):
        log.error("DataJud refused the API key (HTTP %s): rotate DATAJUD_API_KEY", status)
        return LookupResult(Outcome.UNAUTHORIZED, alias=alias)
    if status == 404:
        # Unknown index: the alias table and DataJud disagree.
        log.warning("DataJud has no index api_publica_%s", alias)
        return LookupResult(Outcome.UNSUPPORTED_TRIBUNAL, alias=alias)
    if status != 200 or body is None:
        return LookupResult(Outcome.UNAVAILABLE, alias=alias)
    return _interpret(body, alias)


def _metric_outcome(status: int, result: LookupResult) -> str:
    if status == 0:
        return "timeout"  # no HTTP answer at all: unreachable or too slow
    if result.outcome is Outcome.NOT_FOUND:
        return "not_found"
    if status == 200:
        return "ok"
    return "error"


class DataJudClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 8.0,
        attempts: int = 3,
        backoff_s: float = 0.3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s

    async def lookup(self, number: CaseNumber) -> LookupResult:
        alias = datajud_alias(number)
        if alias is None:
            return LookupResult(Outcome.UNSUPPORTED_TRIBUNAL)
        query = {"query": {"match": {"numeroProcesso": number.digits}}, "size": 10}
        started = time.perf_counter()
        status, body = await self._search(alias, query)
        result = _result(status, body, alias)
        metrics.DATAJUD_REQUEST_DURATION.observe(
            time.perf_counter() - started, outcome=_metric_outcome(status, result)
        )
        return result

    async def _search(self, alias: str, query: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """POST the query, retrying transport errors and 5xx/429 with exponential backoff.

        Returns (0, None) when every attempt failed to get an HTTP answer.
        """
        url = f"{self.base_url}/api_publica_{alias}/_search"
        headers = {"Authorization": f"APIKey {self._api_key}", "Content-Type": "application/json"}
        status, body = 0, None
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            for attempt in range(1, self._attempts + 1):
                try:
                    async with session.post(url, json=query, headers=headers) as response:
                        status = response.status
                        body = await response.json(content_type=None) if status == 200 else None
                except (TimeoutError, aiohttp.ClientError, ValueError) as error:
                    log.warning("DataJud %s attempt %d failed: %r", alias, attempt, error)
                    status, body = 0, None
                if status not in (0, 429) and status < 500:
                    return status, body
                if attempt < self._attempts:
                    await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
        log.error("DataJud %s unavailable after %d attempts (last HTTP %s)", alias,
                  self._attempts, status or "none")  # fmt: skip
        return status, body


def _interpret(body: dict[str, Any], alias: str) -> LookupResult:
    hits = [hit.get("_source") or {} for hit in body.get("hits", {}).get("hits", [])]
    if not hits:
        # Sealed cases are left out of the public index, so "not found" may also mean sealed;
        # the message to the citizen says both.
        return LookupResult(Outcome.NOT_FOUND, alias=alias)
    # One hit per degree/instance: the one updated last describes where the case is now.
    hits.sort(key=lambda source: str(source.get("dataHoraUltimaAtualizacao", "")), reverse=True)
    latest = hits[0]
    if int(latest.get("nivelSigilo") or 0) > 0:
        return LookupResult(Outcome.SEALED, alias=alias)
    others = tuple(str(hit.get("grau", "")) for hit in hits[1:] if hit.get("grau"))
    return LookupResult(Outcome.FOUND, record=_record(latest), alias=alias, other_degrees=others)


def _record(source: dict[str, Any]) -> CaseRecord:
    movements = []
    for raw in source.get("movimentos") or []:
        complements = tuple(
            str(item.get("nome") or item.get("descricao") or "")
            for item in raw.get("complementosTabelados") or []
            if item.get("nome") or item.get("descricao")
        )
        code = raw.get("codigo")
        movements.append(
            Movement(
                code=int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
                name=str(raw.get("nome") or ""),
                when=str(raw.get("dataHora") or ""),
                complements=complements,
            )
        )
    movements.sort(key=lambda movement: movement.when, reverse=True)
    return CaseRecord(
        number=str(source.get("numeroProcesso", "")),
        tribunal=str(source.get("tribunal", "")),
        degree=str(source.get("grau", "")),
        class_name=str((source.get("classe") or {}).get("nome", "")),
        court_unit=str((source.get("orgaoJulgador") or {}).get("nome", "")),
        subjects=tuple(
            str(subject.get("nome", ""))
            for subject in source.get("assuntos") or []
            if isinstance(subject, dict) and subject.get("nome")
        ),
        filed_at=str(source.get("dataAjuizamento", "")),
        updated_at=str(source.get("dataHoraUltimaAtualizacao", "")),
        movements=tuple(movements),
    )
