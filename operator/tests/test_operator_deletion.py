"""End to end: what deleting an AssistenteDigital does to its data (spec.deletionPolicy).

The local control plane runs the real garbage collector and StatefulSet controller, so PVCs
are created from the volume claim templates (they stay Pending: kwok has no provisioner) and
the owner references decide what goes with the resource.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.cluster

SAMPLE = Path(__file__).resolve().parents[1] / "config/samples/assistentedigital.yaml"
GROUP_KIND = "assistentesdigitais.assistente.digital"
CLUSTER = "clusters.postgresql.cnpg.io"

Poll = Callable[..., Any]


def with_data_stores(name: str, namespace: str, policy: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["deletionPolicy"] = policy
    body["spec"]["postgres"] = {
        "mode": "cloudnativepg",
        "cloudnativepg": {"instances": 1},
        "rasaSecretRef": body["spec"]["postgres"]["rasaSecretRef"],
    }
    body["spec"]["redis"]["inCluster"].update(
        replicas=1, sentinelQuorum=1, persistence={"enabled": True, "size": "1Gi"}
    )
    return body


def redis_claims(kube: Any, name: str, namespace: str) -> list[dict[str, Any]]:
    claims = kube.list_objects("persistentvolumeclaims", namespace)
    return [c for c in claims if c["metadata"]["name"] == f"data-{name}-redis-0"]


def owners(obj: dict[str, Any] | None) -> list[str]:
    return [ref["kind"] for ref in (obj or {}).get("metadata", {}).get("ownerReferences", [])]


def created_with_data(kube: Any, body: dict[str, Any], poll: Poll) -> None:
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    kube.apply([body])
    poll(lambda: kube.get(CLUSTER, f"{name}-pg", namespace), what="the CloudNativePG Cluster")
    poll(lambda: redis_claims(kube, name, namespace), what="the Redis PVC")


def delete_and_wait_for_garbage_collection(
    kube: Any, name: str, namespace: str, poll: Poll
) -> None:
    kube.run("delete", GROUP_KIND, name, "-n", namespace, "--wait=true", "--timeout=60s")
    poll(
        lambda: (
            not kube.list_objects(
                "deployments,statefulsets,services,configmaps",
                namespace,
                f"app.kubernetes.io/instance={name}",
            )
        ),
        what="garbage collection of the owned children",
        timeout=120,
    )


def test_retain_keeps_the_database_and_redis_volumes(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    """Also switching from Delete: the operator drops the owner reference it had set."""
    body = with_data_stores("keep", namespace, "Delete")
    created_with_data(kube, body, poll)
    assert owners(kube.get(CLUSTER, "keep-pg", namespace)) == ["AssistenteDigital"]
    body["spec"]["deletionPolicy"] = "Retain"
    kube.apply([body])
    poll(
        lambda: not owners(kube.get(CLUSTER, "keep-pg", namespace)),
        what="the Cluster's owner reference to be removed",
    )

    def volumes_released() -> bool:
        """The StatefulSet controller has seen the Retain policy and let go of the PVC; deleting
        before that would let the garbage collector take the PVC with the StatefulSet."""
        redis = kube.get("statefulsets", "keep-redis", namespace)
        if redis is None:
            return False
        policy = redis["spec"].get("persistentVolumeClaimRetentionPolicy", {})
        return (
            policy.get("whenDeleted") == "Retain"
            and redis.get("status", {}).get("observedGeneration") == redis["metadata"]["generation"]
            and [owners(c) for c in redis_claims(kube, "keep", namespace)] == [[]]
        )

    poll(volumes_released, what="the StatefulSet controller to release the Redis PVC")

    delete_and_wait_for_garbage_collection(kube, "keep", namespace, poll)
    cluster = kube.get(CLUSTER, "keep-pg", namespace)
    assert cluster is not None, "the database was deleted with the resource"
    assert cluster["metadata"].get("deletionTimestamp") is None
    [claim] = redis_claims(kube, "keep", namespace)
    assert claim["metadata"].get("deletionTimestamp") is None
    assert not owners(claim)
    # docs/operator.md tells people to find the retained volumes by these labels.
    labels = claim["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "keep"
    assert labels["app.kubernetes.io/component"] == "redis"

    # A new resource of the same name takes the retained database over.
    kube.apply([with_data_stores("keep", namespace, "Retain")])
    poll(
        lambda: (kube.get(GROUP_KIND, "keep", namespace) or {}).get("status", {}).get("phase"),
        what="the new resource to be reconciled",
    )
    again = kube.get(CLUSTER, "keep-pg", namespace)
    assert again is not None
    assert again["metadata"]["uid"] == cluster["metadata"]["uid"]


def test_delete_removes_the_database_and_redis_volumes(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    created_with_data(kube, with_data_stores("drop", namespace, "Delete"), poll)
    poll(
        lambda: [owners(c) for c in redis_claims(kube, "drop", namespace)] == [["StatefulSet"]],
        what="the StatefulSet controller to make the Redis PVC its own",
    )
    delete_and_wait_for_garbage_collection(kube, "drop", namespace, poll)
    poll(
        lambda: kube.get(CLUSTER, "drop-pg", namespace) is None,
        what="the Cluster to be garbage-collected",
        timeout=120,
    )
    poll(
        lambda: not redis_claims(kube, "drop", namespace),
        what="the Redis PVC to be garbage-collected",
        timeout=120,
    )
