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
from assistente_testbed.process import ServiceError

OPERATOR = "operator"
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
