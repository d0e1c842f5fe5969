"""The install bases (operator/config/default and operator/config/namespaced) on the local
control plane: accepted by the API server, and enough for the operator to work with only the
rights they grant. The operator runs as a process with its ServiceAccount's token, as its pod
would (kwok nodes cannot run the image)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.cluster

OPERATOR_DIR = Path(__file__).resolve().parents[1]
LOG_DIR = OPERATOR_DIR.parent / ".local"
SAMPLE = OPERATOR_DIR / "config/samples/assistentedigital.yaml"
GROUP_KIND = "assistentesdigitais.assistente.digital"
SERVICE_ACCOUNT = "assistente-operator"

Poll = Callable[..., Any]


def sample(name: str, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    for component in ("api", "nlu", "actions", "worker"):
        body["spec"][component] = {"replicas": 1}
    body["spec"]["redis"]["inCluster"].update(replicas=1, sentinelQuorum=1)
    return body


def ready(kube: Any, name: str, namespace: str) -> dict[str, Any] | None:
    obj = kube.get(GROUP_KIND, name, namespace)
    status = (obj or {}).get("status", {})
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    current = obj is not None and status.get("observedGeneration") == obj["metadata"]["generation"]
    return obj if current and conditions.get("Ready") == "True" else None


def can_i(kube: Any, namespace: str, *args: str) -> bool:
    result = kube.run(
        "auth",
        "can-i",
        *args,
        f"--as=system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}",
        check=False,
    )
    return bool(result.stdout.strip() == "yes")


def test_the_cluster_wide_install_is_accepted_and_runs_under_its_service_account(
    kube: Any, install_kit: Any
) -> None:
    documents = install_kit.build(OPERATOR_DIR / "config/default")
    kinds = {d["kind"] for d in documents}
    assert {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"} <= kinds
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    result = kube.run(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=yaml.safe_dump(deployment)
    )
    assert "serverside-applied (server dry run)" in result.stdout
    # The `kube` fixture applied the rest for real; the e2e operator runs with these rights.
    namespace = "assistente-operator-system"
    assert can_i(kube, namespace, "patch", "deployments", "-A")
    assert can_i(kube, namespace, "watch", GROUP_KIND, "-A")
    assert not can_i(kube, namespace, "get", "secrets", "-A")
    assert not can_i(kube, namespace, "update", "deployments", "-A")


@pytest.fixture
def namespaced_install(install_kit: Any, namespace: str, tmp_path: Path) -> list[dict[str, Any]]:
    """operator/config/namespaced, pointed at a fresh namespace as its README says."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                # kustomize takes bases by relative path only.
                "resources": [os.path.relpath(OPERATOR_DIR / "config/namespaced", overlay)],
            }
        )
    )
    documents: list[dict[str, Any]] = install_kit.apply_without_the_operator_pod(overlay)
    return documents


def test_the_namespaced_mode_works_with_a_role_in_one_namespace(
    kube: Any,
    install_kit: Any,
    operator: Any,
    namespace: str,
    namespaced_install: list[dict[str, Any]],
    tmp_path: Path,
    poll: Poll,
) -> None:
    kinds = {d["kind"] for d in namespaced_install}
    assert {"Role", "RoleBinding", "ServiceAccount", "Deployment"} <= kinds
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    [deployment] = [d for d in namespaced_install if d["kind"] == "Deployment"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASSISTENTE_OPERATOR_NAMESPACES"] == {
        "name": "ASSISTENTE_OPERATOR_NAMESPACES",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }
    assert can_i(kube, namespace, "patch", "deployments", "-n", namespace)
    assert not can_i(kube, namespace, "list", "deployments", "-A")
    assert not can_i(kube, namespace, "list", "namespaces")
    assert not can_i(kube, namespace, "list", "customresourcedefinitions")

    outside = f"{namespace}-out"
    kube.run("create", "namespace", outside)
    operator.stop()  # the cluster-wide operator would serve this namespace too
    log = LOG_DIR / "operator-namespaced-e2e.log"
    log.unlink(missing_ok=True)
    scoped = install_kit.operator(
        log,
        kubeconfig=install_kit.credentials(namespace, SERVICE_ACCOUNT, tmp_path / "kubeconfig"),
        # What the Deployment's fieldRef gives the pod.
        env={"ASSISTENTE_OPERATOR_NAMESPACES": namespace},
    )
    try:
        scoped.start()
        kube.apply([sample("court", namespace), sample("elsewhere", outside)])
        poll(lambda: ready(kube, "court", namespace), what="the resource in the namespace Ready")
        # Drift in the namespace is repaired through the namespaced watches.
        kube.run("delete", "configmap", "court-settings", "-n", namespace)
        poll(
            lambda: kube.get("configmap", "court-settings", namespace),
            what="the deleted ConfigMap to come back",
        )
        passes = scoped.passes()
        poll(lambda: scoped.passes() >= passes + 2, what="two more passes", timeout=60)
        assert not (kube.get(GROUP_KIND, "elsewhere", outside) or {}).get("status")
        assert not kube.list_objects("deployments", outside)
    finally:
        scoped.stop()
        kube.run("delete", "namespace", outside, "--wait=false", check=False)
        operator.restart()
    text = log.read_text()
    for denied in ("Forbidden", "403 Forbidden", "Not enough permissions"):
        assert denied not in text, f"the namespaced operator was denied something: see {log}"
