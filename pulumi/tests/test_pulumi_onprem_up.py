"""A real `pulumi up` of the onprem stack against the local control plane: create, a second
`up` that changes nothing, an in-place update, and a destroy that leaves nothing behind.

The CLI and the Kubernetes provider are built from the Go module proxy (hack/build-tools.sh),
state goes to a file backend in a temporary directory and secrets to a passphrase provider.
The local nodes are simulated by kwok, so no container runs there: the operator runs beside the
test as a real process (as in the operator's own end-to-end tests) while Pulumi still creates
its Deployment, RBAC and CRD. On a real node the in-cluster Deployment takes over (see
docs/pulumi.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assistente_pulumi import automation
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import ManagedProcess, free_port, wait_until
from pulumi import automation as auto

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "assistente-digital"
OPERATOR_NAMESPACE = "assistente-operator-system"
CRD = "assistentesdigitais.assistente.digital"
TIMINGS = REPO / ".local" / "pulumi-onprem-timings.json"


@pytest.fixture(scope="module")
def tools() -> automation.Tools:
    """The CLI and the provider, built once per version into the shared cache."""
    return automation.Tools.built()


@pytest.fixture(scope="module")
def operator_process(kube_cluster: KubeCluster) -> Iterator[ManagedProcess]:
    """The operator as a real process watching the whole cluster; it starts before the CRD
    exists and picks it up once Pulumi creates it."""
    port = free_port()
    process = ManagedProcess(
        "operator",
        [
            sys.executable,
            "-m",
            "assistente_operator",
            "run",
            "--resync-seconds",
            "5",
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
        ],
        log_path=REPO / ".local" / "pulumi-operator.log",
        env={
            **os.environ,
            "KUBECONFIG": str(kube_cluster.kubeconfig),
            "ASSISTENTE_OPERATOR_DISCOVERY_TTL": "1",
        },
    )
    process.start()

    def healthy() -> bool:
        process.check_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(
            healthy, timeout=90, what="the operator's liveness endpoint", log_path=process.log_path
        )
        yield process
    finally:
        process.stop()


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


def test_onprem_up_update_and_destroy(
    tools: automation.Tools,
    kube_cluster: KubeCluster,
    postgres_server: PostgresServer,
    operator_process: ManagedProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build_tools = automation.REPO / "hack" / "build-tools.sh"
    kustomize_dir = subprocess.run(
        [str(build_tools), "--bin-dir", "kustomize"], check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.setenv("KUSTOMIZE", f"{kustomize_dir}/kustomize")
    postgres_server.create_database("assistente")
    local = automation.LocalCluster(
        kubeconfig=kube_cluster.kubeconfig,
        root=tmp_path,
        postgres={
            "host": postgres_server.host,
            "port": postgres_server.port,
            "dbname": "assistente",
            "user": postgres_server.user,
        },
        postgres_password=postgres_server.password or "senha-local-0123456789",
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
    assistant = get(kube_cluster, CRD, "tjxx", "-n", NAMESPACE)
    assert assistant is not None
    assert condition(assistant, "Ready")["status"] == "True"
    assert assistant["status"]["observedGeneration"] == assistant["metadata"]["generation"]
    deployment = get(kube_cluster, "deployment", "assistente-operator", "-n", OPERATOR_NAMESPACE)
    assert deployment is not None
    assert get(kube_cluster, "clusterrole", "assistente-operator") is not None
    secret = get(kube_cluster, "secret", "tjxx-postgres", "-n", NAMESPACE)
    assert secret is not None
    assert set(secret["data"]) == {"uri", "ro-uri", "host", "port", "dbname", "user", "password"}
    datajud = get(kube_cluster, "secret", "tjxx-datajud", "-n", NAMESPACE)
    assert datajud is not None
    assert set(datajud["data"]) == {"apiKey"}
    hpa = get(kube_cluster, "hpa", "tjxx-api", "-n", NAMESPACE)
    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 12  # from Pulumi.onprem.yaml's assistantSpec

    # 2. A second up with the same config changes nothing.
    started = time.monotonic()
    second = stack.up(on_output=record, expect_no_changes=True)
    timings["second_up"] = time.monotonic() - started
    assert set(changes(second)) == {"same"}, changes(second)

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
    updated = get(kube_cluster, CRD, "tjxx", "-n", NAMESPACE)
    assert updated is not None
    assert updated["metadata"]["uid"] == uid  # in place, not replaced
    assert updated["spec"]["api"]["autoscaling"]["maxReplicas"] == 20
    assert condition(updated, "Ready")["status"] == "True"
    assert updated["status"]["observedGeneration"] == updated["metadata"]["generation"]
    hpa = get(kube_cluster, "hpa", "tjxx-api", "-n", NAMESPACE)
    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 20

    # 4. destroy removes everything it made; the operator's children go with their owner.
    started = time.monotonic()
    gone = stack.destroy(on_output=record)
    timings["destroy"] = time.monotonic() - started
    assert changes(gone).get("delete", 0) == created["create"], changes(gone)
    assert get(kube_cluster, "crd", CRD) is None
    assert get(kube_cluster, "namespace", NAMESPACE) is None
    assert get(kube_cluster, "namespace", OPERATOR_NAMESPACE) is None
    assert get(kube_cluster, "clusterrole", "assistente-operator") is None
    assert get(kube_cluster, "clusterrolebinding", "assistente-operator") is None
    state = stack.export_stack().deployment or {}
    assert state.get("resources") in (None, [])

    TIMINGS.write_text(json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=2) + "\n")
    print(f"pulumi onprem timings (s): {timings}")
