"""Fixtures for the operator's end-to-end tests: the CRD in the local cluster, the operator
running as a real process (``python -m assistente_operator run``), and helpers to poll."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from assistente_testbed.cluster import KubeCluster

OPERATOR_DIR = Path(__file__).resolve().parents[1]
REPO = OPERATOR_DIR.parent
LOG_DIR = REPO / ".local"
SAMPLE = OPERATOR_DIR / "config/samples/assistentedigital.yaml"
RESYNC_SECONDS = 5
INSTALL_NAMESPACE = "assistente-operator-system"

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None], *, timeout: float = 90, what: str, interval: float = 0.25
) -> T:
    """Polls ``check`` until it returns something truthy; fails with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Kube:
    """kubectl against the test cluster, returning parsed JSON."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=check)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.run("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def list_objects(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.run(*args).stdout)["items"]
        return items

    def apply(
        self, documents: list[dict[str, Any]], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(documents), check=check
        )


def kustomize_build(cluster: KubeCluster, path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(cluster.bin_dir / "kustomize"), "build", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def service_account_kubeconfig(cluster: KubeCluster, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a bound token), as its pod would."""
    token = cluster.kubectl(
        "create", "token", name, "-n", namespace, "--duration=12h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "local", "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def install_without_the_operator_pod(cluster: KubeCluster, path: Path) -> list[dict[str, Any]]:
    """Applies an install base except its Deployment: kwok nodes cannot run the image, so the
    tests run the operator as a process with the ServiceAccount's credentials instead."""
    documents = kustomize_build(cluster, path)
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump_all([d for d in documents if d["kind"] != "Deployment"]),
    )
    return documents


class OperatorProcess:
    """The operator as users run it, in its own process, logging to .local/."""

    def __init__(
        self,
        cluster: KubeCluster,
        log_path: Path,
        *,
        kubeconfig: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.extra_env = env or {}
        self.port = free_port()
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(
            os.environ,
            KUBECONFIG=str(self.kubeconfig),
            ASSISTENTE_OPERATOR_DISCOVERY_TTL="1",
            **self.extra_env,
        )
        log = self.log_path.open("ab")
        log.write(f"\n===== operator start {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assistente_operator",
                "run",
                "--resync-seconds",
                str(RESYNC_SECONDS),
                "--liveness",
                f"http://127.0.0.1:{self.port}/healthz",
                "--metrics",
                f"127.0.0.1:{self.metrics_port}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(
            self.probe, timeout=60, what=f"the operator's liveness endpoint (log: {self.log_path})"
        )

    def probe(self) -> dict[str, Any] | None:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"the operator exited with {self.process.returncode}; see {self.log_path}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/healthz", timeout=2
            ) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except OSError:
            return None

    def metrics(self) -> str:
        """The operator's Prometheus exposition."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def sample(self, name: str, **labels: str) -> float:
        """One sample of the operator's /metrics, read now (the liveness endpoint caches its
        figures for 10 s); 0 when the series is absent."""
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        series = f"{name}{{{wanted}}}" if labels else name
        match = re.search(rf"^{re.escape(series)} (\S+)$", self.metrics(), re.M)
        return float(match.group(1)) if match else 0.0

    def passes(self) -> int:
        body = self.probe() or {}
        return int(body.get("reconciler", {}).get("passes", 0))

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.port = free_port()
        self.metrics_port = free_port()
        self.start()


@pytest.fixture(scope="session")
def kube(kube_cluster: KubeCluster) -> Kube:
    """The cluster with the operator's install base applied: CRD, namespace, ServiceAccount and
    the generated ClusterRole (everything but the operator's Deployment)."""
    install_without_the_operator_pod(kube_cluster, OPERATOR_DIR / "config/default")
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/assistentesdigitais.assistente.digital",
    )
    return Kube(kube_cluster)


@pytest.fixture(scope="session")
def operator(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator with exactly the shipped RBAC: its ServiceAccount's token, not the admin's."""
    LOG_DIR.mkdir(exist_ok=True)
    credentials = service_account_kubeconfig(
        kube.cluster,
        INSTALL_NAMESPACE,
        "assistente-operator",
        tmp_path_factory.mktemp("operator") / "kubeconfig",
    )
    process = OperatorProcess(kube.cluster, LOG_DIR / "operator-e2e.log", kubeconfig=credentials)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"op-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)


class InstallKit:
    """The install helpers for test modules (they cannot import conftest by name)."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster

    def build(self, path: Path) -> list[dict[str, Any]]:
        return kustomize_build(self.cluster, path)

    def apply_without_the_operator_pod(self, path: Path) -> list[dict[str, Any]]:
        return install_without_the_operator_pod(self.cluster, path)

    def credentials(self, namespace: str, service_account: str, path: Path) -> Path:
        return service_account_kubeconfig(self.cluster, namespace, service_account, path)

    def operator(
        self, log_path: Path, *, kubeconfig: Path, env: dict[str, str] | None = None
    ) -> OperatorProcess:
        return OperatorProcess(self.cluster, log_path, kubeconfig=kubeconfig, env=env)


@pytest.fixture(scope="session")
def install_kit(kube: Kube) -> InstallKit:
    return InstallKit(kube.cluster)


@pytest.fixture(scope="session")
def poll() -> Callable[..., Any]:
    """``wait_for`` for test modules (they cannot import conftest by name)."""
    return wait_for
