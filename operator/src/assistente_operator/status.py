"""Pure status logic: component readiness from live children, conditions, phase.

Condition messages are user-facing (read by the courts' platform teams), so they are in
Brazilian Portuguese; types and reasons are stable CamelCase API values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistente_operator.models import Phase

Obj = dict[str, Any]

MAX_MESSAGE = 1024

COMPONENT_CONDITIONS: dict[str, str] = {
    "api": "ApiReady",
    "nlu": "NluReady",
    "actions": "ActionsReady",
    "worker": "WorkerReady",
    "redis": "RedisReady",
    "postgres": "PostgresReady",
}


@dataclass(frozen=True)
class Readiness:
    """One component's state, as a condition will show it."""

    component: str
    ready: bool
    reason: str
    message: str
    failed: bool = False  # stuck in a way waiting will not fix
    ready_replicas: int = 0
    replicas: int = 0
    kind: str = ""


def deployment_readiness(component: str, obj: Obj) -> Readiness:
    """Rolled out like ``kubectl rollout status`` means it: current, updated and available."""
    name = obj["metadata"]["name"]
    spec, status = obj.get("spec", {}), obj.get("status", {})
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))

    def state(ok: bool, reason: str, message: str, *, failed: bool = False) -> Readiness:
        return Readiness(component, ok, reason, message, failed, available, desired, "Deployment")

    for condition in status.get("conditions", []):
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return state(
                False,
                "ProgressDeadlineExceeded",
                f"Deployment {name} não concluiu a atualização: {condition.get('message', '')}",
                failed=True,
            )
    if int(status.get("observedGeneration", 0)) < int(obj["metadata"].get("generation", 0)):
        return state(
            False,
            "Progressing",
            f"Deployment {name}: alteração ainda não processada pelo controlador",
        )
    if updated < desired or total > updated or available < updated:
        return state(
            False,
            "RollingOut",
            f"Deployment {name}: {available}/{desired} réplicas disponíveis, {updated} atualizadas",
        )
    return state(
        True,
        "Available",
        f"Deployment {name}: {available}/{desired} réplicas disponíveis",
    )


def statefulset_readiness(component: str, obj: Obj) -> Readiness:
    name = obj["metadata"]["name"]
    spec, status = obj.get("spec", {}), obj.get("status", {})
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))

    def state(ok: bool, reason: str, message: str) -> Readiness:
        return Readiness(component, ok, reason, message, False, ready, desired, "StatefulSet")

    current = int(status.get("observedGeneration", 0)) >= int(obj["metadata"].get("generation", 0))
    revision_done = (
        status.get("currentRevision") == status.get("updateRevision") or updated >= desired
    )
    if current and ready >= desired and revision_done:
        return state(
            True,
            "Available",
            f"StatefulSet {name}: {ready}/{desired} pods prontos",
        )
    return state(
        False,
        "RollingOut",
        f"StatefulSet {name}: {ready}/{desired} pods prontos",
    )


def cnpg_readiness(obj: Obj) -> Readiness:
    """CloudNativePG reports readyInstances and a phase; no status means it has not seen it yet."""
    name = obj["metadata"]["name"]
    desired = int(obj.get("spec", {}).get("instances", 1))
    status = obj.get("status") or {}
    ready = int(status.get("readyInstances", 0))

    def state(ok: bool, reason: str, message: str) -> Readiness:
        return Readiness("postgres", ok, reason, message, False, ready, desired, "Cluster")

    if not status:
        return state(
            False,
            "WaitingForCloudNativePG",
            f"Cluster {name} criado; aguardando o operador CloudNativePG informar o estado "
            "(ele está instalado e em execução?)",
        )
    phase = str(status.get("phase", ""))
    if ready >= desired:
        return state(
            True,
            "ClusterReady",
            f"Cluster {name}: {ready}/{desired} instâncias prontas ({phase})",
        )
    return state(
        False,
        "ClusterNotReady",
        f"Cluster {name}: {ready}/{desired} instâncias prontas ({phase or 'sem fase'})",
    )


def set_condition(
    conditions: list[Obj],
    *,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[Obj]:
    """Returns ``conditions`` with one condition set; lastTransitionTime moves only on a flip."""
    value = "Unknown" if status is None else ("True" if status else "False")
    if (
        len(message) > MAX_MESSAGE
    ):  # the schema caps it; a long list of errors must not block status
        message = message[: MAX_MESSAGE - 1] + "…"
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = now
    if previous is not None and previous.get("status") == value:
        transition = previous.get("lastTransitionTime", now)
    condition: Obj = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    others = [c for c in conditions if c.get("type") != type_]
    return [*others, condition]


def condition_status(conditions: list[Obj], type_: str) -> str | None:
    found = next((c for c in conditions if c.get("type") == type_), None)
    return None if found is None else str(found.get("status"))


def summarize(
    components: list[Readiness], *, apply_errors: list[str]
) -> tuple[Phase, bool, bool, str]:
    """(phase, ready, degraded, message) from component states and apply failures."""
    waiting = [c for c in components if not c.ready]
    failed = [c for c in components if c.failed]
    if apply_errors:
        return Phase.DEGRADED, False, True, "; ".join(apply_errors)
    if failed:
        return Phase.DEGRADED, False, True, "; ".join(c.message for c in failed)
    if waiting:
        names = ", ".join(c.component for c in waiting)
        return Phase.PROGRESSING, False, False, f"aguardando: {names}"
    return Phase.READY, True, False, "todos os componentes estão prontos"
