"""The operator in a local cluster: as a local process beside it (`make cluster` on kwok nodes)
or as a pod from its image, installed from operator/config (the real node)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from assistente_testbed import daemon
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.paths import repo_root
from assistente_testbed.process import ManagedProcess, ServiceError, free_port

OPERATOR = "operator"
OPERATOR_NAMESPACE = "assistente-operator-system"
OPERATOR_DEPLOYMENT = "assistente-operator"
CRD_KUSTOMIZATION = Path("operator") / "config" / "crd"
CRD_NAME = "assistentesdigitais.assistente.digital"


def install_and_run(cluster: KubeCluster) -> None:
    crd_dir = repo_root() / CRD_KUSTOMIZATION
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(crd_dir))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD_NAME}")
    operator = Path(sys.executable).parent / "assistente-operator"
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))
    pid = daemon.start(OPERATOR, [str(operator), "run"], env=env)
    print(f"operator running (pid {pid}); logs: {daemon.log_file(OPERATOR)}")


def stop() -> None:
    if daemon.stop(OPERATOR):
        print("operator stopped")


UPSTREAM_IMAGE = "ghcr.io/assistente-digital/operator"
INSTALL_BASE = Path("operator") / "config" / "default"


def install_in_cluster(cluster: KubeCluster, image: str, *, timeout: float = 300) -> None:
    """The operator as a pod of the cluster, from its image, under the ServiceAccount and RBAC
    that `operator/config/default` ships: a kustomize overlay that only swaps in `image`."""
    from assistente_testbed.tools import cached_bin_dir

    overlay = cluster.workdir / "operator-install"
    overlay.mkdir(parents=True, exist_ok=True)
    name, _, tag = image.rpartition(":")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes bases by relative path only.
        "resources": [os.path.relpath(repo_root() / INSTALL_BASE, overlay)],
        "images": [{"name": UPSTREAM_IMAGE, "newName": name, "newTag": tag}],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    built = subprocess.run(
        [str(cached_bin_dir("kustomize") / "kustomize"), "build", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise ServiceError(f"kustomize build {overlay}: {built.stderr.strip()}")
    rendered = built.stdout
    cluster.kubectl("apply", "--server-side", "-f", "-", input=rendered)
    deployments = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    for deployment in deployments:
        cluster.kubectl(
            "-n", deployment["metadata"]["namespace"], "rollout", "status",
            f"deployment/{deployment['metadata']['name']}", f"--timeout={timeout:.0f}s",
            timeout=timeout + 30,
        )  # fmt: skip


class OperatorProcess:
    """The operator out of cluster, as a process with the cluster's admin kubeconfig.

    kwok nodes run no containers, so the operator Deployment that Argo CD syncs there only
    looks Available; this process does the reconciling. On a cluster with a real node running
    the operator's image, `in_cluster_operator_ready()` takes its place.
    """

    def __init__(self, cluster: KubeCluster, log_path: Path, *, resync_seconds: int = 5) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.resync_seconds = resync_seconds
        self._process: ManagedProcess | None = None

    def start(self) -> None:
        operator = Path(sys.executable).parent / "assistente-operator"
        env = dict(os.environ, KUBECONFIG=str(self.cluster.kubeconfig))
        argv = [
            str(operator),
            "run",
            "--resync-seconds",
            str(self.resync_seconds),
            "--liveness",
            f"http://127.0.0.1:{free_port()}/healthz",
        ]
        self._process = ManagedProcess("operator", argv, log_path=self.log_path, env=env)
        self._process.start()

    def check_alive(self) -> None:
        if self._process is not None:
            self._process.check_alive()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None


def in_cluster_operator_ready(cluster: KubeCluster, namespace: str = OPERATOR_NAMESPACE) -> bool:
    """The operator's own Deployment is rolled out (meaningful where its pod really runs)."""
    result = cluster.kubectl(
        "rollout",
        "status",
        f"deployment/{OPERATOR_DEPLOYMENT}",
        "-n",
        namespace,
        "--timeout=1s",
        check=False,
    )
    return result.returncode == 0
