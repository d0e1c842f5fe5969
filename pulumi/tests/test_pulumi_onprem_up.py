"""A real `pulumi up` of the onprem stack against the local control plane: create, a second
`up` that changes nothing, an in-place update, and a destroy that leaves nothing behind.

The CLI and the Kubernetes provider are built from the Go module proxy (hack/build-tools.sh),
state goes to a file backend in a temporary directory and secrets to a passphrase provider.
Everything the stack creates runs for real on the test bed's real node: the operator is the
Deployment Pulumi creates (its image built here, under the ServiceAccount and RBAC Pulumi
creates), and the assistant it reconciles runs as pods whose API migrates and serves from the
test bed's PostgreSQL, published to the pods at the node's address. `up` returns once the
resource reports Ready, which the operator only says when every component's pods are Ready.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from assistente_pulumi import automation
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.images import BuiltImage
from assistente_testbed.node import NODE_NAME
from assistente_testbed.postgres import PostgresServer
from pulumi import automation as auto

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "assistente-digital"
OPERATOR_NAMESPACE = "assistente-operator-system"
CRD = "assistentesdigitais.assistente.digital"
TIMINGS = REPO / ".local" / "pulumi-onprem-timings.json"
COMPONENTS = ("api", "worker", "nlu", "actions", "redis")


@pytest.fixture(scope="module")
def tools() -> automation.Tools:
    """The CLI and the provider, built once per version into the shared cache."""
    return automation.Tools.built()


def get(cluster: KubeCluster, *args: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        assert (
            "NotFound" in result.stderr
            or "the server doesn't have a resource type" in result.stderr
        ), result.stderr
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in obj.get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return dict(item)
    return {}


def changes(result: auto.UpResult | auto.DestroyResult) -> dict[str, int]:
    return {str(op): count for op, count in (result.summary.resource_changes or {}).items()}


def pods_on_the_node(cluster: KubeCluster, namespace: str) -> list[dict[str, Any]]:
    """The pods of `namespace`, each checked to run on the real node with every container
    ready (in a container of containerd, not a simulated one)."""
    found = get(cluster, "pods", "-n", namespace)
    assert found is not None
    pods: list[dict[str, Any]] = [
        p for p in found["items"] if p["metadata"].get("deletionTimestamp") is None
    ]
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE_NAME, pod["metadata"]["name"]
        for status in pod["status"]["containerStatuses"]:
            assert status["ready"], (pod["metadata"]["name"], status["name"])
            assert status["containerID"].startswith("containerd://")
    return pods


def test_onprem_up_update_and_destroy(
    tools: automation.Tools,
    real_cluster: KubeCluster,
    app_images: dict[str, BuiltImage],
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert real_cluster.node is not None
    build_tools = automation.REPO / "hack" / "build-tools.sh"
    kustomize_dir = subprocess.run(
        [str(build_tools), "--bin-dir", "kustomize"], check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.setenv("KUSTOMIZE", f"{kustomize_dir}/kustomize")
    postgres_server.create_database("assistente")
    rasa_password = secrets.token_hex(24)
    postgres_server.ensure_owned_database("rasa", rasa_password)
    local = automation.LocalCluster(
        kubeconfig=real_cluster.kubeconfig,
        root=tmp_path,
        postgres={
            "host": real_cluster.node.publish_host_port(postgres_server.port, 5432),
            "port": 5432,
            "dbname": "assistente",
            "user": postgres_server.user,
        },
        postgres_password=postgres_server.password,
        images={name: image.ref for name, image in app_images.items()},
        rasa_postgres={"dbname": "rasa", "user": "rasa"},
        rasa_postgres_password=rasa_password,
    )
    stack = local.stack(tools)
    timings: dict[str, float] = {}
    log = REPO / ".local" / "pulumi-onprem-up.log"
    log.parent.mkdir(exist_ok=True)

    def record(line: str) -> None:
        with log.open("a") as out:
            out.write(line + "\n")

    # 1. up: the operator's install base, the Secrets and the resource, which must become Ready
    #    (the provider waits on the resource's Ready condition before `up` returns).
    started = time.monotonic()
    first = stack.up(on_output=record)
    timings["up"] = time.monotonic() - started
    created = changes(first)
    assert created.get("create", 0) >= 10, created
    assistant = get(real_cluster, CRD, "tjxx", "-n", NAMESPACE)
    assert assistant is not None
    assert condition(assistant, "Ready")["status"] == "True"
    assert assistant["status"]["observedGeneration"] == assistant["metadata"]["generation"]
    # The operator that reconciled it is the pod of Pulumi's Deployment, under its own
    # ServiceAccount, and the assistant runs in containers on the real node.
    [operator] = pods_on_the_node(real_cluster, OPERATOR_NAMESPACE)
    assert operator["spec"]["serviceAccountName"] == "assistente-operator"
    assert operator["spec"]["containers"][0]["image"] == app_images["operator"].ref
    components = {
        p["metadata"]["labels"].get("app.kubernetes.io/component")
        for p in pods_on_the_node(real_cluster, NAMESPACE)
    }
    assert set(COMPONENTS) <= components, components
    assert get(real_cluster, "clusterrole", "assistente-operator") is not None
    secret = get(real_cluster, "secret", "tjxx-postgres", "-n", NAMESPACE)
    assert secret is not None
    assert set(secret["data"]) == {"uri", "ro-uri", "host", "port", "dbname", "user", "password"}
    # The components' credentials, generated by the program, and Rasa's own database user.
    security = get(real_cluster, "secret", "tjxx-security", "-n", NAMESPACE)
    assert security is not None
    assert set(security["data"]) == {"redis-password", "rasa-token", "lgpd-audit-key"}
    rasa_db = get(real_cluster, "secret", "tjxx-rasa-db", "-n", NAMESPACE)
    assert rasa_db is not None
    assert set(rasa_db["data"]) == {"host", "port", "dbname", "user", "password"}
    assert base64.b64decode(rasa_db["data"]["password"]).decode() == rasa_password
    # Rasa keeps its tracker in its own database, under its own user.
    tables = postgres_server.execute(
        "SELECT tableowner FROM pg_tables WHERE tablename = 'events'", database="rasa"
    )
    assert tables.split() == ["rasa"]
    datajud = get(real_cluster, "secret", "tjxx-datajud", "-n", NAMESPACE)
    assert datajud is not None
    assert set(datajud["data"]) == {"apiKey"}
    hpa = get(real_cluster, "hpa", "tjxx-api", "-n", NAMESPACE)
    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 12  # from Pulumi.onprem.yaml's assistantSpec

    # 2. A second up with the same config changes nothing.
    started = time.monotonic()
    second = stack.up(on_output=record, expect_no_changes=True)
    timings["second_up"] = time.monotonic() - started
    assert set(changes(second)) == {"same"}, changes(second)
    # The generated credentials stay those of the first up.
    kept = get(real_cluster, "secret", "tjxx-security", "-n", NAMESPACE)
    assert kept is not None
    assert kept["data"] == security["data"]

    # 3. A changed value (the API's maximum replicas) updates the resource in place.
    spec = json.loads(stack.get_config("assistente-digital:assistantSpec").value)
    spec["api"]["autoscaling"]["maxReplicas"] = 20
    automation.set_config(stack, {"assistantSpec": spec})
    uid = assistant["metadata"]["uid"]
    started = time.monotonic()
    third = stack.up(on_output=record)
    timings["update"] = time.monotonic() - started
    assert changes(third).get("update") == 1, changes(third)
    assert set(changes(third)) == {"update", "same"}, changes(third)
    updated = get(real_cluster, CRD, "tjxx", "-n", NAMESPACE)
    assert updated is not None
    assert updated["metadata"]["uid"] == uid  # in place, not replaced
    assert updated["spec"]["api"]["autoscaling"]["maxReplicas"] == 20
    assert condition(updated, "Ready")["status"] == "True"
    assert updated["status"]["observedGeneration"] == updated["metadata"]["generation"]
    hpa = get(real_cluster, "hpa", "tjxx-api", "-n", NAMESPACE)
    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 20

    # 4. destroy removes everything it made; the operator's children go with their owner.
    started = time.monotonic()
    gone = stack.destroy(on_output=record)
    timings["destroy"] = time.monotonic() - started
    assert changes(gone).get("delete", 0) == created["create"], changes(gone)
    assert get(real_cluster, "crd", CRD) is None
    assert get(real_cluster, "namespace", NAMESPACE) is None
    assert get(real_cluster, "namespace", OPERATOR_NAMESPACE) is None
    assert get(real_cluster, "clusterrole", "assistente-operator") is None
    assert get(real_cluster, "clusterrolebinding", "assistente-operator") is None
    state = stack.export_stack().deployment or {}
    assert state.get("resources") in (None, [])

    TIMINGS.write_text(json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=2) + "\n")
    print(f"pulumi onprem timings (s): {timings}")
