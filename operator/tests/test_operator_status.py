"""Status logic: readiness of children, condition bookkeeping, the summary."""

from __future__ import annotations

from typing import Any

from assistente_operator.models import Phase
from assistente_operator.status import (
    Readiness,
    cnpg_readiness,
    deployment_readiness,
    set_condition,
    statefulset_readiness,
    summarize,
)


def deployment(replicas: int = 2, generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "x-api", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 1, **status},
    }


def test_deployment_ready_only_when_rolled_out() -> None:
    done = deployment(replicas=2, updatedReplicas=2, availableReplicas=2)
    assert deployment_readiness("api", done).ready
    rolling = deployment(replicas=2, updatedReplicas=1, availableReplicas=2)
    rolling["status"]["replicas"] = 3
    assert not deployment_readiness("api", rolling).ready
    stale = deployment(generation=2, updatedReplicas=2, availableReplicas=2)
    assert deployment_readiness("api", stale).reason == "Progressing"


def test_deployment_past_its_deadline_is_failed() -> None:
    stuck = deployment(
        conditions=[
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ]
    )
    state = deployment_readiness("api", stuck)
    assert state.failed
    assert not state.ready


def test_statefulset_readiness() -> None:
    sts: dict[str, Any] = {
        "metadata": {"name": "x-redis", "generation": 1},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 3,
            "currentRevision": "a",
            "updateRevision": "a",
        },
    }
    assert statefulset_readiness("redis", sts).ready
    sts["status"]["readyReplicas"] = 2
    assert not statefulset_readiness("redis", sts).ready


def test_cnpg_without_status_waits_for_its_operator() -> None:
    cluster: dict[str, Any] = {"metadata": {"name": "x-pg"}, "spec": {"instances": 3}}
    assert cnpg_readiness(cluster).reason == "WaitingForCloudNativePG"
    cluster["status"] = {"readyInstances": 3, "phase": "Cluster in healthy state"}
    assert cnpg_readiness(cluster).ready


def test_last_transition_time_moves_only_when_status_flips() -> None:
    conditions = set_condition(
        [], type_="Ready", status=False, reason="A", message="", generation=1, now="t1"
    )
    conditions = set_condition(
        conditions, type_="Ready", status=False, reason="B", message="m", generation=2, now="t2"
    )
    [ready] = conditions
    assert (ready["lastTransitionTime"], ready["reason"], ready["observedGeneration"]) == (
        "t1",
        "B",
        2,
    )
    [ready] = set_condition(
        conditions, type_="Ready", status=True, reason="C", message="", generation=2, now="t3"
    )
    assert ready["lastTransitionTime"] == "t3"
    assert ready["status"] == "True"


def test_summary() -> None:
    ok = Readiness("api", True, "Available", "")
    waiting = Readiness("nlu", False, "RollingOut", "")
    broken = Readiness("worker", False, "ProgressDeadlineExceeded", "preso", failed=True)
    assert summarize([ok], apply_errors=[])[:3] == (Phase.READY, True, False)
    assert summarize([ok, waiting], apply_errors=[])[:3] == (Phase.PROGRESSING, False, False)
    assert summarize([ok, broken], apply_errors=[])[:3] == (Phase.DEGRADED, False, True)
    assert summarize([ok], apply_errors=["x"])[:3] == (Phase.DEGRADED, False, True)


def test_long_messages_are_cut_to_fit_the_schema() -> None:
    [ready] = set_condition(
        [],
        type_="Ready",
        status=False,
        reason="ApplyFailed",
        message="x" * 10_000,
        generation=1,
        now="t",
    )
    assert len(ready["message"]) <= 1024
