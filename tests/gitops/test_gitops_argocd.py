"""The GitOps loop for real: Argo CD, built from its Go module, syncs this repository's committed
layout (argocd/bootstrap -> argocd/root -> argocd/cluster/local) into a local cluster, and the
operator makes the court's assistant Ready.

The cluster is this module's own (Argo CD watches every namespace), registered the way a
platform engineer registers one. kwok nodes run no containers, so the operator runs out of
cluster while Argo CD syncs its manifests (see `operator_runner.OperatorProcess`).
The tests run in file order and build on each other, as one continuous session would.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_testbed.argocd import (
    CONTROLLER_METRICS_PORT,
    DISTRIBUTION,
    ROOT_APPLICATION,
    ArgoCD,
)
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.operator_runner import OperatorProcess
from assistente_testbed.process import wait_until

pytestmark = pytest.mark.cluster

CLUSTER = "local"
ASSISTANT_APP = f"{CLUSTER}-assistente"
NAMESPACE = "assistente-digital"
SAMPLE = Path("operator/config/samples/assistentedigital.yaml")


@pytest.fixture(scope="module")
def gitops_cluster(argocd: ArgoCD) -> KubeCluster:
    return argocd.cluster


@pytest.fixture(scope="module")
def operator(gitops_cluster: KubeCluster, argocd: ArgoCD) -> Iterator[OperatorProcess]:
    # The CRD arrives with the operator's Application (sync wave -1).
    argocd.wait_for(f"{CLUSTER}-assistente-operator", timeout=600)
    process = OperatorProcess(gitops_cluster, argocd.log_dir / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _assistant(cluster: KubeCluster, name: str = "tjxx") -> dict[str, Any]:
    return dict(cluster.get_json("assistentesdigitais.assistente.digital", name, "-n", NAMESPACE))


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def _resource_health(argocd: ArgoCD, app: str, kind: str, name: str) -> dict[str, str]:
    """The health Argo CD shows for one resource of an application (status and message)."""
    found = argocd.application(app) or {}
    for resource in (found.get("status") or {}).get("resources") or []:
        if resource.get("kind") == kind and resource.get("name") == name:
            return dict(resource.get("health") or {})
    return {}


def _health(argocd: ArgoCD, app: str, kind: str, name: str) -> str:
    return _resource_health(argocd, app, kind, name).get("status", "")


def test_the_root_application_syncs_and_the_assistant_becomes_ready(
    argocd: ArgoCD, operator: OperatorProcess, gitops_cluster: KubeCluster
) -> None:
    argocd.wait_for(ROOT_APPLICATION, timeout=300)
    argocd.wait_for(ASSISTANT_APP, revision=argocd.served_commit, timeout=600)

    for upstream in ("prometheus-operator", "assistente-operator"):
        argocd.wait_for(f"{CLUSTER}-{upstream}", timeout=120)
    # Prometheus and Alertmanager are synced, but on kwok nothing runs them: they never report.
    monitoring = argocd.wait_for(f"{CLUSTER}-monitoring", health=None, timeout=120)
    assert monitoring.health == "Progressing"

    resource = _assistant(gitops_cluster)
    assert _condition(resource, "Ready")["status"] == "True"
    assert resource["status"]["observedGeneration"] == resource["metadata"]["generation"]
    # Argo CD's verdict comes from the health check in argocd-cm, in the operator's own words.
    health = _resource_health(argocd, ASSISTANT_APP, "AssistenteDigital", "tjxx")
    assert health == {"status": "Healthy", "message": _condition(resource, "Ready")["message"]}
    gitops_cluster.kubectl("get", "deployment", "tjxx-api", "-n", NAMESPACE)


def test_argo_cd_listens_on_loopback_only(argocd: ArgoCD) -> None:
    pids = set(argocd.pids)
    listeners = []
    for line in subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            listeners.append(line.split()[3])
    assert len(listeners) >= 4, listeners  # repo-server, ApplicationSet controller, Redis
    assert all(address.startswith("127.0.0.1:") for address in listeners), listeners
    # The one listener Argo CD 3.2 cannot move (the controller's metrics on every interface) is
    # there, inside the controller's own network namespace, which has nothing but loopback.
    network = argocd.controller_network
    assert network is not None
    inside = subprocess.run(
        network.command(["ss", "-ltnH"]), capture_output=True, text=True, check=True
    ).stdout
    assert re.search(rf"(\*|0\.0\.0\.0|\[::\]):{CONTROLLER_METRICS_PORT}\s", inside), inside
    interfaces = subprocess.run(
        network.command(["ip", "-o", "link"]), capture_output=True, text=True, check=True
    ).stdout
    assert [line.split(":")[1].strip() for line in interfaces.splitlines()] == ["lo"]


def test_a_commit_changing_the_resource_is_synced_and_reconciled(
    argocd: ArgoCD, operator: OperatorProcess, gitops_cluster: KubeCluster
) -> None:
    with argocd.git.clone(DISTRIBUTION) as work:
        sample = yaml.safe_load((work / SAMPLE).read_text())
        assert sample["spec"]["api"]["autoscaling"]["maxReplicas"] != 7
        sample["spec"]["api"]["autoscaling"]["maxReplicas"] = 7
        (work / SAMPLE).write_text(yaml.safe_dump(sample, sort_keys=False))
        committed = time.monotonic()
        commit = argocd.git.commit(work, "api: at most 7 replicas")
    argocd.refresh(ASSISTANT_APP)  # what the git host's webhook would do

    argocd.wait_for(ASSISTANT_APP, revision=commit, timeout=300)
    synced = time.monotonic()

    def reconciled() -> bool:
        hpa: dict[str, Any] = dict(gitops_cluster.get_json("hpa", "tjxx-api", "-n", NAMESPACE))
        return bool(hpa["spec"]["maxReplicas"] == 7)

    wait_until(reconciled, timeout=120, what="the operator to set the HPA's maxReplicas to 7")
    resource = _assistant(gitops_cluster)
    assert resource["spec"]["api"]["autoscaling"]["maxReplicas"] == 7
    assert _condition(resource, "Ready")["status"] == "True"
    ready = time.monotonic()
    print(
        f"\ncommit -> Synced/Healthy: {synced - committed:.1f}s; "
        f"commit -> HPA reconciled and Ready: {ready - committed:.1f}s"
    )


def test_children_deleted_by_hand_are_restored(
    argocd: ArgoCD, operator: OperatorProcess, gitops_cluster: KubeCluster
) -> None:
    # A child Application of the cluster's app of apps, and the court's resource itself.
    gitops_cluster.kubectl(
        "delete", "applications.argoproj.io", f"{CLUSTER}-monitoring", "-n", "argocd"
    )
    old_uid = _assistant(gitops_cluster)["metadata"]["uid"]
    gitops_cluster.kubectl(
        "delete", "assistentesdigitais.assistente.digital", "tjxx", "-n", NAMESPACE
    )

    argocd.wait_for(f"{CLUSTER}-monitoring", health=None, timeout=180)

    def restored_and_ready() -> bool:
        result = gitops_cluster.kubectl(
            "get", "assistentesdigitais.assistente.digital", "tjxx", "-n", NAMESPACE, "-o", "json",
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return False
        obj = json.loads(result.stdout)
        return (
            obj["metadata"]["uid"] != old_uid and _condition(obj, "Ready").get("status") == "True"
        )

    wait_until(restored_and_ready, timeout=180, what="the resource to come back and be Ready")
    argocd.wait_for(ASSISTANT_APP, timeout=180)


def test_a_resource_that_never_becomes_ready_is_progressing_then_degraded(
    argocd: ArgoCD, operator: OperatorProcess, gitops_cluster: KubeCluster
) -> None:
    with argocd.git.clone(DISTRIBUTION) as work:
        stuck = yaml.safe_load((work / SAMPLE).read_text())
        stuck["metadata"] = {"name": "tjxx-stuck", "namespace": NAMESPACE}
        # No node offers a thousand cores: the API's pods stay Pending.
        stuck["spec"]["api"]["resources"] = {
            "requests": {"cpu": "1000", "memory": "256Mi"},
            "limits": {"cpu": "1000", "memory": "512Mi"},
        }
        (work / "overlays/local/stuck.yaml").write_text(yaml.safe_dump(stuck, sort_keys=False))
        kustomization = yaml.safe_load((work / "overlays/local/kustomization.yaml").read_text())
        kustomization["resources"].append("stuck.yaml")
        (work / "overlays/local/kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        commit = argocd.git.commit(work, "a resource that cannot become ready")
    argocd.refresh(ASSISTANT_APP)

    argocd.wait_for(ASSISTANT_APP, revision=commit, health="Progressing", timeout=300)

    def waiting_for_the_api() -> bool:
        # The operator's own verdict (so its Deployments exist), as Argo CD shows it.
        health = _resource_health(argocd, ASSISTANT_APP, "AssistenteDigital", "tjxx-stuck")
        return health.get("status") == "Progressing" and "api" in health.get("message", "")

    wait_until(
        waiting_for_the_api, timeout=120, what="Argo CD to show tjxx-stuck waiting for its API"
    )
    # A real rollout gets the Deployment's 10-minute progress deadline; shorten it (a field the
    # operator does not own) so the deadline passes during the test.
    gitops_cluster.kubectl(
        "patch", "deployment", "tjxx-stuck-api", "-n", NAMESPACE, "--type", "merge",
        "-p", '{"spec":{"progressDeadlineSeconds":5}}',
    )  # fmt: skip
    argocd.wait_for(ASSISTANT_APP, health="Degraded", timeout=300)
    assert _condition(_assistant(gitops_cluster, "tjxx-stuck"), "Degraded")["status"] == "True"
    health = _resource_health(argocd, ASSISTANT_APP, "AssistenteDigital", "tjxx-stuck")
    assert health["status"] == "Degraded"
    assert "tjxx-stuck-api" in health["message"]  # the operator's condition, shown by Argo CD

    # Taking it out of git prunes it, and the application is healthy again.
    with argocd.git.clone(DISTRIBUTION) as work:
        (work / "overlays/local/stuck.yaml").unlink()
        kustomization = yaml.safe_load((work / "overlays/local/kustomization.yaml").read_text())
        kustomization["resources"].remove("stuck.yaml")
        (work / "overlays/local/kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        commit = argocd.git.commit(work, "remove the stuck resource")
    argocd.refresh(ASSISTANT_APP)
    argocd.wait_for(ASSISTANT_APP, revision=commit, timeout=300)
    result = gitops_cluster.kubectl(
        "get", "assistentesdigitais.assistente.digital", "tjxx-stuck", "-n", NAMESPACE, check=False
    )
    assert result.returncode != 0
    assert "NotFound" in result.stderr


def _databases(work: Path, names: dict[str, str]) -> None:
    """Commit-ready: one resource per name with an in-cluster database and that deletionPolicy."""
    sample = yaml.safe_load((work / SAMPLE).read_text())
    documents = []
    for name, policy in names.items():
        spec = dict(sample["spec"])
        spec["postgres"] = {
            "mode": "cloudnativepg",
            "cloudnativepg": {"instances": 1},
            "rasaSecretRef": sample["spec"]["postgres"]["rasaSecretRef"],
        }
        spec["deletionPolicy"] = policy
        documents.append(
            {**sample, "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}
        )
    kustomization_path = work / "overlays/local/kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_path.read_text())
    if documents:
        (work / "overlays/local/databases.yaml").write_text(yaml.safe_dump_all(documents))
        if "databases.yaml" not in kustomization["resources"]:
            kustomization["resources"].append("databases.yaml")
    else:
        (work / "overlays/local/databases.yaml").unlink()
        kustomization["resources"].remove("databases.yaml")
    kustomization_path.write_text(yaml.safe_dump(kustomization))


def _database(cluster: KubeCluster, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "get", "clusters.postgresql.cnpg.io", f"{name}-pg", "-n", NAMESPACE, "-o", "json",
        check=False,
    )  # fmt: skip
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_a_prune_keeps_the_database_unless_the_resource_says_delete(
    argocd: ArgoCD, operator: OperatorProcess, gitops_cluster: KubeCluster
) -> None:
    with argocd.git.clone(DISTRIBUTION) as work:
        _databases(work, {"tjxx-keep": "Retain", "tjxx-drop": "Delete"})
        commit = argocd.git.commit(work, "two assistants with their own databases")
    argocd.refresh(ASSISTANT_APP)
    # No CloudNativePG operator runs here, so they stay Progressing (WaitingForCloudNativePG).
    argocd.wait_for(ASSISTANT_APP, revision=commit, health=None, timeout=300)
    wait_until(
        lambda: (
            _database(gitops_cluster, "tjxx-keep") is not None
            and _database(gitops_cluster, "tjxx-drop") is not None
        ),
        timeout=120,
        what="the operator to create both database clusters",
    )
    kept = _database(gitops_cluster, "tjxx-keep")
    assert kept is not None
    assert not kept["metadata"].get("ownerReferences")  # Retain: nothing to collect it with
    dropped = _database(gitops_cluster, "tjxx-drop")
    assert dropped is not None
    assert dropped["metadata"]["ownerReferences"][0]["name"] == "tjxx-drop"

    # Taking both out of git: Argo CD prunes the resources.
    with argocd.git.clone(DISTRIBUTION) as work:
        _databases(work, {})
        commit = argocd.git.commit(work, "retire both assistants")
    argocd.refresh(ASSISTANT_APP)
    argocd.wait_for(ASSISTANT_APP, revision=commit, timeout=300)
    for name in ("tjxx-keep", "tjxx-drop"):
        result = gitops_cluster.kubectl(
            "get", "assistentesdigitais.assistente.digital", name, "-n", NAMESPACE, check=False
        )
        assert "NotFound" in result.stderr, name
    wait_until(
        lambda: _database(gitops_cluster, "tjxx-drop") is None,
        timeout=120,
        what="the garbage collector to delete the database of the Delete resource",
    )
    survivor = _database(gitops_cluster, "tjxx-keep")
    assert survivor is not None
    assert survivor["metadata"]["uid"] == kept["metadata"]["uid"]

    # Back in git under the same name, the resource takes the same database over.
    with argocd.git.clone(DISTRIBUTION) as work:
        _databases(work, {"tjxx-keep": "Retain"})
        commit = argocd.git.commit(work, "the assistant comes back")
    argocd.refresh(ASSISTANT_APP)
    argocd.wait_for(ASSISTANT_APP, revision=commit, health=None, timeout=300)
    wait_until(
        lambda: (
            _condition(_assistant(gitops_cluster, "tjxx-keep"), "PostgresReady").get("reason")
            == "WaitingForCloudNativePG"
        ),
        timeout=120,
        what="the returning resource to find its database",
    )
    again = _database(gitops_cluster, "tjxx-keep")
    assert again is not None
    assert again["metadata"]["uid"] == kept["metadata"]["uid"]


def test_stopping_argo_cd_leaves_no_process_behind(argocd: ArgoCD) -> None:
    pids = argocd.pids
    assert pids
    argocd.stop()
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert alive == []
