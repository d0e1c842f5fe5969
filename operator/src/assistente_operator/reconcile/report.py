"""Status: what the pass found, written to the resource's status and announced as Events.

Readiness comes from the children the builders name (``Plan.names``), as the apply step left
them; the rules for one child live in ``status.py`` (pure). The status is patched only when it
changed, and Events are posted only on the transitions people care about.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from assistente_operator.builders import Plan
from assistente_operator.builders.common import ChildRef
from assistente_operator.k8s import Client
from assistente_operator.models import AssistenteDigital, Phase
from assistente_operator.reconcile.apply import ObjectKey, object_key
from assistente_operator.status import (
    COMPONENT_CONDITIONS,
    Readiness,
    cnpg_readiness,
    condition_status,
    deployment_readiness,
    set_condition,
    statefulset_readiness,
    summarize,
)

Obj = dict[str, Any]

# How each kind that shows a component's state is read.
READINESS: dict[str, Callable[[str, Obj], Readiness]] = {
    "Deployment": deployment_readiness,
    "StatefulSet": statefulset_readiness,
    "Cluster": lambda _component, live: cnpg_readiness(live),
}
# What the condition says when a component runs outside the cluster.
EXTERNAL = {
    "redis": "Redis externo (não verificado pelo operador)",
    "postgres": "PostgreSQL externo (não verificado pelo operador)",
}
# What the condition says when the CRD of the component's kind is not served.
MISSING_CRD = {
    "Cluster": (
        "CloudNativePGMissing",
        "o CRD clusters.postgresql.cnpg.io não está instalado; instale o CloudNativePG ou use "
        "postgres.mode: external",
    ),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def readiness(wanted: Plan, live: dict[ObjectKey, Obj]) -> list[Readiness]:
    """Every component's state, in status order, from the children the builders named."""
    skipped = {object_key(obj) for obj in wanted.skipped}
    return [
        _component_readiness(component, ref, live, skipped)
        for component, ref in wanted.names.components.items()
    ]


def _component_readiness(
    component: str, ref: ChildRef | None, live: dict[ObjectKey, Obj], skipped: set[ObjectKey]
) -> Readiness:
    if ref is None:
        return Readiness(component, True, "External", EXTERNAL[component])
    current = live.get(ref.key)
    if current is not None:
        return READINESS[ref.kind](component, current)
    if ref.key in skipped and ref.kind in MISSING_CRD:
        reason, message = MISSING_CRD[ref.kind]
        return Readiness(component, False, reason, message, failed=True)
    return Readiness(component, False, "NotApplied", f"{ref.kind} não aplicado")


class StatusReporter:
    """Writes the resource's status and posts Events, through the client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def report(
        self,
        body: Obj,
        cr: AssistenteDigital,
        wanted: Plan,
        components: list[Readiness],
        apply_errors: list[str],
    ) -> tuple[Phase, bool]:
        """Conditions, phase and component list from one pass; returns (phase, ready)."""
        status: Obj = dict(body.get("status") or {})
        generation = int(body["metadata"].get("generation", 0))
        now = _now()
        conditions: list[Obj] = list(status.get("conditions") or [])
        for state in components:
            conditions = set_condition(
                conditions,
                type_=COMPONENT_CONDITIONS[state.component],
                status=state.ready,
                reason=state.reason,
                message=state.message,
                generation=generation,
                now=now,
            )
        conditions = self._monitoring_condition(conditions, cr, wanted, generation, now)
        phase, ready, degraded, message = summarize(components, apply_errors=apply_errors)
        conditions = set_condition(
            conditions,
            type_="Ready",
            status=ready,
            reason="AllComponentsReady"
            if ready
            else ("ReconcileFailed" if apply_errors else "ComponentsNotReady"),
            message=message,
            generation=generation,
            now=now,
        )
        conditions = set_condition(
            conditions,
            type_="Progressing",
            status=phase == Phase.PROGRESSING,
            reason="RollingOut"
            if phase == Phase.PROGRESSING
            else ("Complete" if ready else "Stalled"),
            message=message if phase == Phase.PROGRESSING else "",
            generation=generation,
            now=now,
        )
        conditions = set_condition(
            conditions,
            type_="Degraded",
            status=degraded,
            reason=("ApplyFailed" if apply_errors else "ComponentFailed")
            if degraded
            else "AsExpected",
            message=message if degraded else "",
            generation=generation,
            now=now,
        )
        api = next(c for c in components if c.component == "api")
        new_status: Obj = {
            "observedGeneration": generation,
            "phase": phase.value,
            "apiReplicas": f"{api.ready_replicas}/{api.replicas}",
            "conditions": sorted(conditions, key=lambda c: c["type"]),
            "components": [
                {
                    "name": c.component,
                    "kind": c.kind or "External",
                    "readyReplicas": c.ready_replicas,
                    "replicas": c.replicas,
                }
                for c in components
            ],
        }
        await self._write(body, status, new_status)
        return phase, ready

    def _monitoring_condition(
        self, conditions: list[Obj], cr: AssistenteDigital, wanted: Plan, generation: int, now: str
    ) -> list[Obj]:
        skipped = sorted(
            {o["kind"] for o in wanted.skipped if o["apiVersion"].startswith("monitoring.")}
        )
        if not cr.spec.monitoring.enabled:
            status, reason, message = False, "Disabled", "monitoring.enabled é false"
        elif skipped:
            status, reason = False, "PrometheusOperatorCRDsMissing"
            message = (
                "não criados porque os CRDs do Prometheus Operator não estão instalados: "
                + ", ".join(skipped)
            )
        else:
            status, reason, message = True, "Applied", "objetos de monitoramento aplicados"
        return set_condition(
            conditions,
            type_="MonitoringReady",
            status=status,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )

    async def report_paused(self, body: Obj) -> bool:
        """Marks the resource Paused; returns whether it was Ready when paused."""
        status: Obj = dict(body.get("status") or {})
        conditions = set_condition(
            list(status.get("conditions") or []),
            type_="Progressing",
            status=False,
            reason="Paused",
            message="spec.paused é true: o operador não altera nada",
            generation=int(body["metadata"].get("generation", 0)),
            now=_now(),
        )
        new_status = {
            **status,
            "phase": Phase.PAUSED.value,
            "conditions": sorted(conditions, key=lambda c: c["type"]),
        }
        await self._write(body, status, new_status)
        return condition_status(conditions, "Ready") == "True"

    async def report_failure(self, body: Obj, reason: str, message: str) -> None:
        """The resource cannot be reconciled as it is (e.g. an invalid spec)."""
        status: Obj = dict(body.get("status") or {})
        generation = int(body["metadata"].get("generation", 0))
        now = _now()
        conditions = list(status.get("conditions") or [])
        for type_, value in (("Ready", False), ("Degraded", True), ("Progressing", False)):
            conditions = set_condition(
                conditions,
                type_=type_,
                status=value,
                reason=reason,
                message=message,
                generation=generation,
                now=now,
            )
        new_status = {
            **status,
            "observedGeneration": generation,
            "phase": Phase.FAILED.value,
            "conditions": sorted(conditions, key=lambda c: c["type"]),
        }
        await self._write(body, status, new_status)

    async def _write(self, body: Obj, old: Obj, new: Obj) -> None:
        if old != new:
            meta = body["metadata"]
            await self.client.patch_status(meta["namespace"], meta["name"], new)
        await self._announce_transitions(body, old, new)

    async def _announce_transitions(self, body: Obj, old: Obj, new: Obj) -> None:
        """Kubernetes Events for the transitions people care about (not on every pass)."""
        old_conditions = list(old.get("conditions") or [])
        new_conditions = list(new.get("conditions") or [])
        if old.get("phase") != new.get("phase") and new.get("phase") == Phase.PAUSED.value:
            await self.client.post_event(
                body, "Normal", "Paused", "reconciliação pausada (spec.paused)"
            )
        ready_before = condition_status(old_conditions, "Ready")
        ready_now = condition_status(new_conditions, "Ready")
        ready = next((c for c in new_conditions if c["type"] == "Ready"), None)
        if ready is not None and ready_before != ready_now:
            if ready_now == "True":
                await self.client.post_event(body, "Normal", "Ready", "o assistente está pronto")
            elif ready_before == "True":
                await self.client.post_event(body, "Warning", "NotReady", ready.get("message", ""))
        degraded = next((c for c in new_conditions if c["type"] == "Degraded"), None)
        if (
            degraded is not None
            and degraded["status"] == "True"
            and condition_status(old_conditions, "Degraded") != "True"
        ):
            await self.client.post_event(
                body, "Warning", degraded["reason"], degraded.get("message", "")
            )
