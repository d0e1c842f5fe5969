"""The local control plane is real: workloads run on simulated nodes, garbage collection and CEL
validation work, and the third-party CRDs our manifests use are served."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.process import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:6]}"
    kube_cluster.kubectl("create", "namespace", name)
    yield name
    kube_cluster.kubectl("delete", "namespace", name, "--wait=false")


def _pods(cluster: KubeCluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def _workload(kind: str, name: str, replicas: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/smoke:1"}]},
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    api = "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_nodes_are_ready_simulated_nodes(kube_cluster: KubeCluster) -> None:
    nodes = json.loads(kube_cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 3
    for node in nodes:
        assert node["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"
        assert any(
            c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
        )


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_workload_pods_become_running_and_ready(
    kube_cluster: KubeCluster, namespace: str, kind: str
) -> None:
    name = kind.lower()
    kube_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_workload(kind, name, replicas=2))
    )

    def all_ready() -> bool:
        pods = _pods(kube_cluster, namespace, f"app={name}")
        return len(pods) == 2 and all(_ready(p) for p in pods)

    wait_until(all_ready, timeout=90, what=f"2 Ready pods of the {kind}")
    for pod in _pods(kube_cluster, namespace, f"app={name}"):
        assert pod["spec"]["nodeName"], "the scheduler bound the pod to a node"
        assert pod["status"]["podIP"], "kwok gave the pod an IP"


def test_deleting_the_owner_garbage_collects_its_children(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    kube_cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(_workload("Deployment", "owned", replicas=1)),
    )
    wait_until(
        lambda: len(_pods(kube_cluster, namespace, "app=owned")) == 1,
        timeout=60,
        what="the pod of the Deployment",
    )
    replicasets = kube_cluster.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.split()
    assert len(replicasets) == 1

    kube_cluster.kubectl("delete", "deployment", "owned", "-n", namespace, "--wait=false")

    def children_gone() -> bool:
        rs = kube_cluster.kubectl("get", "rs", "-n", namespace, "-o", "name").stdout.split()
        return not rs and not _pods(kube_cluster, namespace, "app=owned")

    wait_until(children_gone, timeout=90, what="the ReplicaSet and pod to be collected")


CEL_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "ranges.smoke.assistente.digital"},
    "spec": {
        "group": "smoke.assistente.digital",
        "scope": "Namespaced",
        "names": {"plural": "ranges", "singular": "range", "kind": "Range"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "min": {"type": "integer"},
                                    "max": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "min deve ser <= max",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_a_cel_rule_rejects_a_bad_object_with_its_message(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    kube_cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(CEL_CRD))
    kube_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/ranges.smoke.assistente.digital"
    )

    def manifest(low: int, high: int) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "smoke.assistente.digital/v1",
                "kind": "Range",
                "metadata": {"name": f"r{low}{high}"},
                "spec": {"min": low, "max": high},
            }
        )

    good = kube_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=manifest(1, 2), check=False
    )
    assert good.returncode == 0, good.stderr
    bad = kube_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=manifest(3, 2), check=False
    )
    assert bad.returncode != 0
    assert "min deve ser <= max" in bad.stderr


@pytest.mark.parametrize(
    ("group", "resources"),
    [
        ("monitoring.coreos.com", {"servicemonitors", "podmonitors", "prometheusrules"}),
        ("postgresql.cnpg.io", {"clusters", "scheduledbackups"}),
        ("argoproj.io", {"applications", "applicationsets", "appprojects"}),
    ],
)
def test_third_party_crds_are_served(
    kube_cluster: KubeCluster, group: str, resources: set[str]
) -> None:
    out = kube_cluster.kubectl("api-resources", "--api-group", group, "-o", "name").stdout
    served = {line.split(".", 1)[0] for line in out.split()}
    assert resources <= served
