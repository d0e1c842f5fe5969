"""Installs the AssistenteDigital CRD into the local cluster and runs the operator against it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from assistente_testbed import daemon
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.paths import repo_root

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
