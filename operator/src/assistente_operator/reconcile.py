"""Level-based reconciliation of one AssistenteDigital.

Each pass computes every desired child from the spec, server-side applies them, prunes owned
children the spec no longer wants, reads readiness from what the API server returned, and
writes status. Passes are idempotent and serialised per object, so kopf handlers, child events
and the periodic resync can all trigger them freely.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from assistente_operator import API_VERSION, KIND
from assistente_operator.builders import OPTIONAL_KINDS, Plan, plan
from assistente_operator.builders.common import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    input_hash,
)
from assistente_operator.k8s import Client, KubeError
from assistente_operator.models import (
    COMPONENTS,
    AssistenteDigital,
    Component,
    Phase,
    PostgresMode,
    StoreMode,
)
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

logger = logging.getLogger(__name__)

RECREATE_TIMEOUT = 30.0
SCALE_FLOOR_MANAGER = "assistente-operator-scale-floor"
# Children from optional CRDs are not watched; unchanged ones are re-applied this often.
UNWATCHED_REASSERT_SECONDS = 300.0
# Kinds whose status controllers keep updating (generation tracks their spec).
STATUS_KINDS = frozenset(
    {"Deployment", "StatefulSet", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
)

Obj = dict[str, Any]

# Kinds the builders may emit, for pruning children the spec no longer wants.
PRUNABLE_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    *OPTIONAL_KINDS,
)


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: Obj) -> tuple[str, str, str]:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences", [])
    )


@dataclass(frozen=True)
class Fingerprint:
    """What an object looked like right after we applied it."""

    digest: str  # of the manifest we sent
    resource_version: str
    generation: int | None
    metadata_digest: str  # labels and annotations
    applied_at: float = 0.0  # time.monotonic()


def _fingerprint(digest: str, live: Obj) -> Fingerprint:
    meta = live.get("metadata", {})
    return Fingerprint(
        digest=digest,
        resource_version=str(meta.get("resourceVersion", "")),
        generation=meta.get("generation"),
        metadata_digest=input_hash(meta.get("labels"), meta.get("annotations")),
        applied_at=time.monotonic(),
    )


def _unchanged_since(last: Fingerprint, digest: str, seen: Obj) -> bool:
    """True when re-applying ``digest`` could not change the object the watch last showed.

    Either nothing changed at all (same resourceVersion), or only its status did: controllers
    update the status of Deployments, StatefulSets, HPAs and PDBs all the time, which moves the
    resourceVersion but neither the generation (spec) nor labels and annotations.
    """
    if last.digest != digest:
        return False
    current = _fingerprint(digest, seen)
    if current.resource_version == last.resource_version:
        return True
    return (
        seen.get("kind") in STATUS_KINDS
        and last.generation is not None
        and current.generation == last.generation
        and current.metadata_digest == last.metadata_digest
    )


def _slim(body: Obj) -> Obj:
    """The parts of a child that readiness needs; keeps the cache small with many objects."""
    meta = body.get("metadata", {})
    spec = body.get("spec") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "resourceVersion",
                "generation",
                "uid",
                "labels",
                "annotations",
            )
            if key in meta
        },
        "spec": {key: spec[key] for key in ("replicas", "instances") if key in spec},
        "status": body.get("status") or {},
    }


class Reconciler:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # namespace/name -> (uid, generation) whose children were last pruned (pruning needs
        # list calls, so it runs once per spec change and once after a restart).
        self._pruned: dict[str, tuple[str, int]] = {}
        self.passes = 0  # completed passes, for the probe and the benchmark
        self.failures = 0
        self.applies = 0  # server-side apply calls (skipped no-ops are not counted)
        # What the watch last showed of each child, and what we last applied to it. When the
        # child has not changed since our apply (same resourceVersion) and the desired manifest
        # has not changed either (same digest), applying again would be a no-op: skip it.
        self._observed: dict[tuple[str, str, str, str], Obj] = {}
        self._last_applied: dict[tuple[str, str, str, str], Fingerprint] = {}
        self._cache_guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def observe(self, body: Obj, *, deleted: bool) -> None:
        """Records a child as the watch shows it (called from the child event handler)."""
        meta = body.get("metadata", {})
        key = (
            body.get("apiVersion", ""),
            body.get("kind", ""),
            meta.get("namespace", ""),
            meta.get("name", ""),
        )
        with self._cache_guard:
            if deleted:
                self._observed.pop(key, None)
                self._last_applied.pop(key, None)
            else:
                self._observed[key] = _slim(body)

    def _forget_child(self, obj: Obj) -> None:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        with self._cache_guard:
            self._observed.pop(key, None)
            self._last_applied.pop(key, None)

    def forget(self, namespace: str, name: str) -> None:
        with self._locks_guard:
            self._locks.pop(f"{namespace}/{name}", None)
            self._pruned.pop(f"{namespace}/{name}", None)

    # --- entry points -------------------------------------------------------------------------

    def reconcile_by_name(self, namespace: str, name: str) -> Outcome | None:
        """Reads the object (fresh, under its lock) and reconciles it; None if it is gone."""
        with self._lock(f"{namespace}/{name}"):
            body = self.client.get(API_VERSION, KIND, namespace, name)
            if body is None:
                self.forget(namespace, name)
                return None
            try:
                outcome = self._reconcile(body)
            except Exception:
                self.failures += 1
                raise
            self.passes += 1
            return outcome

    def reconcile(self, body: Obj) -> Outcome:
        """Reconciles the object ``body`` names (re-read: kopf's copy may be stale)."""
        meta = body["metadata"]
        outcome = self.reconcile_by_name(meta["namespace"], meta["name"])
        return outcome or Outcome(phase=Phase.PENDING, ready=False)

    # --- one pass -----------------------------------------------------------------------------

    def _reconcile(self, body: Obj) -> Outcome:
        meta = body["metadata"]
        status: Obj = dict(body.get("status") or {})
        generation = int(meta.get("generation", 0))
        if meta.get("deletionTimestamp"):
            # Garbage collection removes the children; nothing to do.
            return Outcome(phase=Phase(status.get("phase", Phase.PENDING)), ready=False)
        try:
            cr = AssistenteDigital.from_body(body)
        except ValidationError as error:
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            self._write_failure(
                body, status, generation, "InvalidSpec", f"spec inválido: {message}"
            )
            raise InvalidSpecError(message) from error

        if cr.spec.paused:
            return self._pause(body, status)

        served = self.client.served_optional_kinds()
        wanted = plan(cr, served)
        for obj in wanted.skipped:  # its CRD is gone: apply it afresh once it is back
            self._forget_child(obj)
        applied: dict[tuple[str, str, str], Obj] = {}
        apply_errors: list[str] = []
        temporary = False
        for obj in wanted.objects:
            try:
                applied[_key(obj)] = self._apply(obj)
            except KubeError as error:
                if error.status == 403 and "being terminated" in error.message:
                    # The namespace is going away with everything in it; nothing to repair.
                    logger.info("namespace %s is terminating; stopping", meta["namespace"])
                    return Outcome(phase=Phase(status.get("phase", Phase.PENDING)), ready=False)
                logger.warning(
                    "apply %s/%s failed: %s", obj["kind"], obj["metadata"]["name"], error
                )
                apply_errors.append(
                    f"{obj['kind']} {obj['metadata']['name']}: {error.message or error.reason}"
                )
                optional = (obj["apiVersion"], obj["kind"]) in OPTIONAL_KINDS
                if optional and error.not_found:
                    # Its CRD was removed since discovery ran: look again on the retry.
                    self.client.forget_discovery()
                temporary = temporary or error.temporary or (optional and error.not_found)

        for component in COMPONENTS:
            self._raise_to_autoscaling_floor(cr, component, applied)

        pruned = 0
        prune_key = f"{meta['namespace']}/{meta['name']}"
        if not apply_errors and self._pruned.get(prune_key) != (meta["uid"], generation):
            pruned = self._prune(cr, wanted)
            self._pruned[prune_key] = (meta["uid"], generation)

        components = self._readiness(cr, applied, wanted)
        outcome = self._write_status(body, status, generation, cr, wanted, components, apply_errors)
        outcome.applied, outcome.pruned = len(applied), pruned
        if apply_errors:
            raise ReconcileFailedError("; ".join(apply_errors), temporary=temporary)
        return outcome

    def _apply(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        digest = input_hash(obj)
        with self._cache_guard:
            seen = self._observed.get(key)
            last = self._last_applied.get(key)
        unwatched = (obj["apiVersion"], obj["kind"]) in OPTIONAL_KINDS
        if unwatched and last is not None and last.digest == digest:
            # Not watched (see handlers.py): no event tells us about drift, so re-assert these
            # now and then rather than on every pass; read the Cluster for its readiness.
            if time.monotonic() - last.applied_at < UNWATCHED_REASSERT_SECONDS:
                if obj["kind"] != "Cluster":
                    return obj
                current = self.client.get(
                    obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]
                )
                if current is not None:
                    return current
        elif seen is not None and last is not None and _unchanged_since(last, digest, seen):
            return seen
        live = self._apply_or_recreate(obj)
        self.applies += 1
        with self._cache_guard:
            self._last_applied[key] = _fingerprint(digest, live)
        return live

    def _apply_or_recreate(self, obj: Obj) -> Obj:
        try:
            return self.client.apply(obj)
        except KubeError as error:
            if (
                obj["kind"] == "StatefulSet"
                and error.status == 422
                and "Forbidden" in error.message
            ):
                # volumeClaimTemplates and a few other fields are immutable. Recreate the
                # StatefulSet without touching its pods (orphan), which it adopts again.
                logger.info("recreating StatefulSet %s: %s", obj["metadata"]["name"], error.message)
                meta = obj["metadata"]
                self.client.request(
                    "DELETE",
                    f"/apis/apps/v1/namespaces/{meta['namespace']}/statefulsets/{meta['name']}",
                    body={"propagationPolicy": "Orphan"},
                )
                deadline = time.monotonic() + RECREATE_TIMEOUT
                while self.client.get("apps/v1", "StatefulSet", meta["namespace"], meta["name"]):
                    if time.monotonic() > deadline:
                        raise KubeError(
                            409, "Conflict", "StatefulSet still being deleted"
                        ) from error
                    time.sleep(0.2)  # the garbage collector removes the orphan finalizer
                return self.client.apply(obj)
            raise

    def _raise_to_autoscaling_floor(
        self, cr: AssistenteDigital, component: Component, applied: dict[tuple[str, str, str], Obj]
    ) -> None:
        """A new autoscaled Deployment starts at 1 pod; lift it to minReplicas at once.

        The operator's own field manager never sends ``replicas`` under an HPA (so it never
        resets what the HPA chose). Only when the count is below the HPA's floor, which the HPA
        would enforce anyway on its next sync, a separate manager sets the floor.
        """
        autoscaling = getattr(cr.spec, component).autoscaling
        key = ("apps/v1", "Deployment", f"{cr.metadata.name}-{component}")
        live = applied.get(key)
        if not autoscaling.enabled or live is None:
            return
        if int(live.get("spec", {}).get("replicas", 1)) >= autoscaling.min_replicas:
            return
        floor = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": key[2], "namespace": cr.metadata.namespace},
            "spec": {"replicas": autoscaling.min_replicas},
        }
        applied[key] = self.client.apply(floor, field_manager=SCALE_FLOOR_MANAGER)

    def _prune(self, cr: AssistenteDigital, wanted: Plan) -> int:
        uid = cr.metadata.uid or ""
        keep = {_key(obj) for obj in wanted.objects}
        selector = f"{INSTANCE_LABEL}={cr.metadata.name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        served = self.client.served_optional_kinds()
        pruned = 0
        for api_version, kind in PRUNABLE_KINDS:
            if (api_version, kind) in OPTIONAL_KINDS and (api_version, kind) not in served:
                continue
            for live in self.client.list(api_version, kind, cr.metadata.namespace, selector):
                live_key = (api_version, kind, live["metadata"]["name"])
                if live_key not in keep and _owned_by(live, uid):
                    logger.info("pruning %s %s", kind, live["metadata"]["name"])
                    self._forget_child(
                        {"apiVersion": api_version, "kind": kind, "metadata": live["metadata"]}
                    )
                    self.client.delete(
                        api_version, kind, cr.metadata.namespace, live["metadata"]["name"]
                    )
                    pruned += 1
        return pruned

    # --- readiness and status -----------------------------------------------------------------

    def _readiness(
        self, cr: AssistenteDigital, applied: dict[tuple[str, str, str], Obj], wanted: Plan
    ) -> list[Readiness]:
        name = cr.metadata.name
        result: list[Readiness] = []
        for component in COMPONENTS:
            live = applied.get(("apps/v1", "Deployment", f"{name}-{component}"))
            if live is None:
                result.append(Readiness(component, False, "NotApplied", "Deployment não aplicado"))
            else:
                result.append(deployment_readiness(component, live))
        if cr.spec.redis.mode == StoreMode.IN_CLUSTER:
            live = applied.get(("apps/v1", "StatefulSet", f"{name}-redis"))
            result.append(
                statefulset_readiness("redis", live)
                if live is not None
                else Readiness("redis", False, "NotApplied", "StatefulSet não aplicado")
            )
        else:
            result.append(
                Readiness("redis", True, "External", "Redis externo (não verificado pelo operador)")
            )
        if cr.spec.postgres.mode == PostgresMode.CLOUDNATIVEPG:
            live = applied.get(("postgresql.cnpg.io/v1", "Cluster", f"{name}-pg"))
            if live is not None:
                result.append(cnpg_readiness(live))
            elif any(o["kind"] == "Cluster" for o in wanted.skipped):
                result.append(
                    Readiness(
                        "postgres",
                        False,
                        "CloudNativePGMissing",
                        "o CRD clusters.postgresql.cnpg.io não está instalado; instale o "
                        "CloudNativePG ou use postgres.mode: external",
                        failed=True,
                    )
                )
            else:
                result.append(Readiness("postgres", False, "NotApplied", "Cluster não aplicado"))
        else:
            result.append(
                Readiness(
                    "postgres",
                    True,
                    "External",
                    "PostgreSQL externo (não verificado pelo operador)",
                )
            )
        return result

    def _write_status(
        self,
        body: Obj,
        status: Obj,
        generation: int,
        cr: AssistenteDigital,
        wanted: Plan,
        components: list[Readiness],
        apply_errors: list[str],
    ) -> Outcome:
        now = _now()
        conditions: list[Obj] = list(status.get("conditions") or [])
        for readiness in components:
            conditions = set_condition(
                conditions,
                type_=COMPONENT_CONDITIONS[readiness.component],
                status=readiness.ready,
                reason=readiness.reason,
                message=readiness.message,
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
        self._patch_status_if_changed(body, status, new_status)
        self._announce_transitions(body, status, new_status)
        return Outcome(
            phase=phase,
            ready=ready,
            skipped=[f"{o['kind']}/{o['metadata']['name']}" for o in wanted.skipped],
        )

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

    def _pause(self, body: Obj, status: Obj) -> Outcome:
        now = _now()
        conditions = set_condition(
            list(status.get("conditions") or []),
            type_="Progressing",
            status=False,
            reason="Paused",
            message="spec.paused é true: o operador não altera nada",
            generation=int(body["metadata"].get("generation", 0)),
            now=now,
        )
        new_status = {
            **status,
            "phase": Phase.PAUSED.value,
            "conditions": sorted(conditions, key=lambda c: c["type"]),
        }
        self._patch_status_if_changed(body, status, new_status)
        self._announce_transitions(body, status, new_status)
        ready = condition_status(conditions, "Ready") == "True"
        return Outcome(phase=Phase.PAUSED, ready=ready)

    def _write_failure(
        self, body: Obj, status: Obj, generation: int, reason: str, message: str
    ) -> None:
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
        self._patch_status_if_changed(body, status, new_status)
        self._announce_transitions(body, status, new_status)

    def _patch_status_if_changed(self, body: Obj, old: Obj, new: Obj) -> None:
        if old == new:
            return
        meta = body["metadata"]
        self.client.patch_status(meta["namespace"], meta["name"], new)

    def _announce_transitions(self, body: Obj, old: Obj, new: Obj) -> None:
        """Kubernetes Events for the transitions people care about (not on every pass)."""
        old_conditions = list(old.get("conditions") or [])
        new_conditions = list(new.get("conditions") or [])
        if old.get("phase") != new.get("phase") and new.get("phase") == Phase.PAUSED.value:
            self.client.post_event(body, "Normal", "Paused", "reconciliação pausada (spec.paused)")
        ready_before = condition_status(old_conditions, "Ready")
        ready_now = condition_status(new_conditions, "Ready")
        ready = next((c for c in new_conditions if c["type"] == "Ready"), None)
        if ready is not None and ready_before != ready_now:
            if ready_now == "True":
                self.client.post_event(body, "Normal", "Ready", "o assistente está pronto")
            elif ready_before == "True":
                self.client.post_event(body, "Warning", "NotReady", ready.get("message", ""))
        degraded = next((c for c in new_conditions if c["type"] == "Degraded"), None)
        if (
            degraded is not None
            and degraded["status"] == "True"
            and condition_status(old_conditions, "Degraded") != "True"
        ):
            self.client.post_event(body, "Warning", degraded["reason"], degraded.get("message", ""))
