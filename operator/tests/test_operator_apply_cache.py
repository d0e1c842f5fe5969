"""When the applier may skip a server-side apply: the watch shows a child whose spec, labels and
annotations are still what we applied, even though a controller has rewritten its status since.
The end-to-end check (no writes in steady state) is test_operator_e2e's steady-state test."""

from __future__ import annotations

import copy
from typing import Any

from assistente_operator.reconcile.apply import _fingerprint, _slim, _unchanged_since

DIGEST = "manifest-we-sent"


def _hpa() -> dict[str, Any]:
    # As the API server returns it: autoscaling/v2 HPAs carry no metadata.generation.
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "tjxx-api", "namespace": "tjxx", "resourceVersion": "389"},
        "spec": {
            "minReplicas": 3,
            "maxReplicas": 6,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tjxx-api"},
        },
        "status": {"currentReplicas": 3, "desiredReplicas": 3},
    }


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "tjxx-api",
            "namespace": "tjxx",
            "resourceVersion": "400",
            "generation": 2,
            "labels": {"app": "api"},
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "api"}]}}},
        "status": {"readyReplicas": 3},
    }


def _later(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The same object as the watch shows it after someone wrote to it (a new resourceVersion)."""
    moved = copy.deepcopy(body)
    moved["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 7)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = moved
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return _slim(moved)


def test_a_status_update_of_an_hpa_needs_no_apply() -> None:
    applied = _fingerprint(DIGEST, _hpa())
    assert _unchanged_since(applied, DIGEST, _later(_hpa(), status={"currentReplicas": 5}))


def test_an_hpa_whose_spec_someone_edited_is_applied_again() -> None:
    applied = _fingerprint(DIGEST, _hpa())
    assert not _unchanged_since(applied, DIGEST, _later(_hpa(), spec__maxReplicas=60))


def test_a_deployment_is_judged_by_its_generation_and_labels() -> None:
    applied = _fingerprint(DIGEST, _deployment())
    assert _unchanged_since(applied, DIGEST, _later(_deployment(), status={"readyReplicas": 2}))
    assert not _unchanged_since(applied, DIGEST, _later(_deployment(), metadata__generation=3))
    assert not _unchanged_since(
        applied, DIGEST, _later(_deployment(), metadata__labels={"app": "other"})
    )


def test_a_new_manifest_is_always_applied() -> None:
    applied = _fingerprint(DIGEST, _hpa())
    assert not _unchanged_since(applied, "a-changed-manifest", _slim(_hpa()))
