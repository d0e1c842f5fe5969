"""`make gitops-up` / `make gitops-down`: Argo CD beside the local cluster of `make cluster`.

`up` starts the cluster (and the out-of-cluster operator) if needed, then a detached supervisor
(`assistente-testbed gitops serve`) that runs Argo CD and the git host serving this checkout's
committed HEAD, registers the cluster, applies argocd/bootstrap and stays until `down`.
`down` stops the supervisor, which stops everything it started; any process it could not stop is
killed from the list it keeps, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from assistente_testbed import daemon
from assistente_testbed.argocd import DISTRIBUTION, ROOT_APPLICATION, ArgoCD
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.paths import repo_root, state_dir
from assistente_testbed.process import ServiceError, wait_until

SUPERVISOR = "gitops"
CLUSTER_NAME = "local"


def _state_dir() -> Path:
    path = state_dir() / "argocd"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ready_file() -> Path:
    return _state_dir() / "ready.json"


def running() -> bool:
    return daemon.running_pid(SUPERVISOR) is not None


def serve(cluster: KubeCluster) -> int:
    """Run Argo CD until SIGTERM/SIGINT (the supervisor's body)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    argocd = ArgoCD(cluster, base_dir=_state_dir())
    try:
        argocd.start()
        argocd.register_cluster(CLUSTER_NAME, overlay="local", revision="main")
        argocd.bootstrap()
        _ready_file().write_text(
            json.dumps(
                {"commit": argocd.served_commit, "pids": argocd.pids, "logs": str(argocd.log_dir)}
            )
        )
        stop.wait()
    finally:
        _ready_file().unlink(missing_ok=True)
        argocd.stop()
    return 0


def _publish_head(cluster: KubeCluster) -> None:
    """Serve the checkout's new HEAD and ask every Application to compare now."""
    bare = _state_dir() / "git" / "repositories" / f"{DISTRIBUTION}.git"
    subprocess.run(
        ["git", "push", "--quiet", "--force", str(bare), "HEAD:refs/heads/main"],
        cwd=repo_root(),
        check=True,
    )
    cluster.kubectl(
        "annotate", "--overwrite", "--all", "applications.argoproj.io", "-n", "argocd",
        "argocd.argoproj.io/refresh=normal",
    )  # fmt: skip
    info = json.loads(_ready_file().read_text())
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
    ).stdout.strip()
    _ready_file().write_text(json.dumps({**info, "commit": head}))


def up(cluster: KubeCluster) -> int:
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if dirty:
        print("note: Argo CD serves the committed HEAD; uncommitted changes are not deployed")
    if _ready_file().exists() and daemon.running_pid(SUPERVISOR) is not None:
        _publish_head(cluster)
    if daemon.running_pid(SUPERVISOR) is None:
        _ready_file().unlink(missing_ok=True)
        executable = Path(sys.executable).parent / "assistente-testbed"
        daemon.start(SUPERVISOR, [str(executable), "gitops", "serve"])
        print("starting Argo CD (repo-server, ApplicationSet and application controllers) ...")

    def ready() -> bool:
        if daemon.running_pid(SUPERVISOR) is None:
            raise ServiceError(f"Argo CD's supervisor stopped; see {daemon.log_file(SUPERVISOR)}")
        return _ready_file().exists()

    wait_until(ready, timeout=900, what="Argo CD", log_path=daemon.log_file(SUPERVISOR))
    info = json.loads(_ready_file().read_text())
    kubectl = f"kubectl --kubeconfig {cluster.kubeconfig}"
    print(f"Argo CD is syncing commit {info['commit'][:12]} of this checkout (as main)")
    print(
        f"  {kubectl} -n argocd get applications        # {ROOT_APPLICATION}, {CLUSTER_NAME}, ..."
    )
    print(f"  logs: {info['logs']}")
    print("stop it with: make gitops-down")
    return 0


def _is_ours(pid: int) -> bool:
    """The pid still belongs to this checkout's Argo CD (pids get reused)."""
    marker = str(_state_dir()).encode()
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    return False


def down() -> int:
    info: dict[str, object] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        info = json.loads(_ready_file().read_text())
    stopped = daemon.stop(SUPERVISOR, timeout=60)
    pids = info.get("pids", [])
    for pid in pids if isinstance(pids, list) else []:
        if isinstance(pid, int) and _is_ours(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    _ready_file().unlink(missing_ok=True)
    print("Argo CD stopped" if stopped else "Argo CD was not running")
    return 0
