"""The pass: one level-based reconciliation of one AssistenteDigital.

Each pass plans every desired child from the spec (builders), applies them (``apply.py``),
prunes owned children the spec no longer wants (``prune.py``) and reports readiness in the
status (``report.py``). Passes are idempotent and serialised per object, so kopf handlers,
child events and the periodic resync can all trigger them freely.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assistente_operator import API_VERSION, KIND, metrics
from assistente_operator.builders import plan
from assistente_operator.k8s import Client
from assistente_operator.models import AssistenteDigital, Phase
from assistente_operator.reconcile.apply import Applier
from assistente_operator.reconcile.prune import Pruner
from assistente_operator.reconcile.report import StatusReporter, readiness

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


class InvalidSpecError(Exception):
    """The object cannot be reconciled until someone changes it."""


class ReconcileFailedError(Exception):
    """Some children could not be applied."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass
class Outcome:
    phase: Phase
    ready: bool
    applied: int = 0
    pruned: int = 0
    skipped: list[str] = field(default_factory=list)


def _result_of(error: Exception) -> str:
    """How a failed pass is counted (the same split kopf's handler makes)."""
    if isinstance(error, InvalidSpecError):
        return "invalid_spec"
    if getattr(error, "temporary", False):
        return "temporary_error"
    return "permanent_error"


class Reconciler:
    def __init__(self, client: Client, *, concurrent_passes: int = 4) -> None:
        self.client = client
        self.applier = Applier(client)
        self.pruner = Pruner(client, self.applier)
        self.reporter = StatusReporter(client)
        self._locks: dict[str, asyncio.Lock] = {}
        # Bounds the passes in flight (kopf's handlers and the scheduler both start them), and
        # with them the requests and response bodies held at once.
        self._slots = asyncio.Semaphore(concurrent_passes)
        self.passes = 0  # completed passes, for the probe and the benchmark
        self.failures = 0
        self.inventory = metrics.Inventory()

    @property
    def applies(self) -> int:
        """Server-side apply calls so far (skipped no-ops are not counted)."""
        return self.applier.applies

    def observe(self, body: Obj, *, deleted: bool) -> None:
        """Records a child as the watch shows it (called from the child event handler)."""
        self.applier.observe(body, deleted=deleted)

    def forget(self, namespace: str, name: str) -> None:
        self._locks.pop(f"{namespace}/{name}", None)
        self.pruner.forget(namespace, name)
        self.inventory.forget(f"{namespace}/{name}")

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # --- entry points -------------------------------------------------------------------------

    async def reconcile_by_name(self, namespace: str, name: str) -> Outcome | None:
        """Reads the object (fresh, under its lock) and reconciles it; None if it is gone."""
        async with self._lock(f"{namespace}/{name}"), self._slots:
            body = await self.client.get(API_VERSION, KIND, namespace, name)
            if body is None:
                self.forget(namespace, name)
                return None
            started = time.perf_counter()
            try:
                outcome = await self._pass(body)
            except Exception as error:
                self.failures += 1
                metrics.RECONCILES.labels(result=_result_of(error)).inc()
                raise
            finally:
                metrics.RECONCILE_DURATION.observe(time.perf_counter() - started)
            self.passes += 1
            metrics.RECONCILES.labels(result="success").inc()
            return outcome

    async def reconcile(self, body: Obj) -> Outcome:
        """Reconciles the object ``body`` names (re-read: kopf's copy may be stale)."""
        meta = body["metadata"]
        outcome = await self.reconcile_by_name(meta["namespace"], meta["name"])
        return outcome or Outcome(phase=Phase.PENDING, ready=False)

    # --- one pass -----------------------------------------------------------------------------

    async def _pass(self, body: Obj) -> Outcome:
        meta = body["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        phase_before = Phase((body.get("status") or {}).get("phase", Phase.PENDING))
        if meta.get("deletionTimestamp"):
            # Garbage collection removes the children; nothing to do.
            return Outcome(phase=phase_before, ready=False)
        try:
            cr = AssistenteDigital.from_body(body)
        except ValidationError as error:
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            await self.reporter.report_failure(body, "InvalidSpec", f"spec inválido: {message}")
            self.inventory.set_phase(key, Phase.FAILED)
            raise InvalidSpecError(message) from error

        if cr.spec.paused:
            self.inventory.set_phase(key, Phase.PAUSED)
            return Outcome(phase=Phase.PAUSED, ready=await self.reporter.report_paused(body))

        wanted = plan(cr, await self.client.served_optional_kinds())
        for obj in wanted.skipped:  # its CRD is gone: apply it afresh once it is back
            self.applier.forget(obj)
        applied = await self.applier.apply_all(
            wanted.objects, read_back={ref.key for ref in wanted.names.refs()}
        )
        if applied.namespace_terminating:
            logger.info("namespace %s is terminating; stopping", meta["namespace"])
            return Outcome(phase=phase_before, ready=False)

        pruned = 0 if applied.errors else await self.pruner.prune_if_due(body, wanted)
        phase, ready = await self.reporter.report(
            body, cr, wanted, readiness(wanted, applied.live), applied.errors
        )
        self.inventory.record(key, kinds=[obj["kind"] for obj in wanted.objects], phase=phase)
        if applied.errors:
            raise ReconcileFailedError("; ".join(applied.errors), temporary=applied.temporary)
        return Outcome(
            phase=phase,
            ready=ready,
            applied=len(applied.live),
            pruned=pruned,
            skipped=[f"{o['kind']}/{o['metadata']['name']}" for o in wanted.skipped],
        )
