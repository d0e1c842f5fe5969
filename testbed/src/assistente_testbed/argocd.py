"""Argo CD on 127.0.0.1 against a local cluster, syncing this repository's committed GitOps layout.

What runs (all built from Go modules by hack/build-tools.sh, one multi-call binary):
- Redis, the cache Argo CD's components share (no persistence: it is only a cache);
- the repo-server, which clones the sources and renders manifests (kustomize, directories);
- the ApplicationSet controller, which turns the registered clusters into applications;
- the application controller, which compares and syncs. It serves its metrics on every
  interface with no flag to change that, so it runs in a private network namespace that sees
  only the ports it needs (see `assistente_testbed.private_network`).

The sources are named by their real addresses (https://github.com/...). `GitHost` answers for
github.com on 127.0.0.1 only: this checkout's committed HEAD as `main` of the distribution, and
the pinned upstream projects from the Go module cache (see `assistente_testbed.git_host`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml

from assistente_testbed.cluster import KubeCluster
from assistente_testbed.git_host import GitHost, https_client_env
from assistente_testbed.paths import read_versions, repo_root
from assistente_testbed.private_network import PrivateNetwork
from assistente_testbed.process import (
    LocalServer,
    ManagedProcess,
    ServiceError,
    free_port,
    port_open,
    wait_until,
)
from assistente_testbed.redis import RedisServer
from assistente_testbed.tools import ensure_tools

NAMESPACE = "argocd"
DISTRIBUTION = "assistente-digital/assistente-digital"
BOOTSTRAP = "argocd/bootstrap"
ROOT_APPLICATION = "assistente-digital"
# Upstream projects the cluster applications point at: GitHub slug -> (Go module, version pin).
UPSTREAM_SOURCES: dict[str, tuple[str, str]] = {
    "cloudnative-pg/cloudnative-pg": ("github.com/cloudnative-pg/cloudnative-pg", "CNPG_VERSION"),
    "prometheus-operator/prometheus-operator": (
        "github.com/prometheus-operator/prometheus-operator",
        "PROMETHEUS_OPERATOR_VERSION",
    ),
}
OVERLAY_LABEL = "assistente.digital/overlay"
# Where the application controller serves metrics and /healthz, on every interface of its own
# network namespace (Argo CD 3.2 has no flag for the address).
CONTROLLER_METRICS_PORT = 8082
REVISION_LABEL = "assistente.digital/revision"


@dataclass(frozen=True)
class AppState:
    """What `argocd app get` shows first: sync status, health and the synced revision."""

    sync: str
    health: str
    revision: str
    health_message: str
    operation_phase: str

    @classmethod
    def of(cls, app: Mapping[str, Any]) -> AppState:
        status = app.get("status") or {}
        return cls(
            sync=str((status.get("sync") or {}).get("status", "")),
            health=str((status.get("health") or {}).get("status", "")),
            revision=str((status.get("sync") or {}).get("revision", "")),
            health_message=str((status.get("health") or {}).get("message", "")),
            operation_phase=str((status.get("operationState") or {}).get("phase", "")),
        )


class ArgoCD(LocalServer):
    """Argo CD's controllers for one cluster, with a git host serving the committed checkout."""

    def __init__(
        self,
        cluster: KubeCluster,
        *,
        base_dir: Path | None = None,
        checkout: Path | None = None,
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-argocd-")),
            owns_base_dir=base_dir is None,
        )
        self.cluster = cluster
        self.checkout = checkout or repo_root()
        self.git = GitHost(self.base_dir / "git")
        self.redis = RedisServer(self.base_dir / "redis", appendonly=False)
        self.repo_server_port = free_port()
        self.log_dir = self.base_dir / "logs"
        self._processes: list[ManagedProcess] = []
        self._network: PrivateNetwork | None = None
        self.served_commit = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Self:
        bin_dir = ensure_tools(("argocd", "kustomize"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.git.start()
        self.served_commit = self.git.publish_checkout(DISTRIBUTION, self.checkout)
        versions = read_versions()
        for slug, (module, key) in UPSTREAM_SOURCES.items():
            self.git.publish_module(slug, module, versions[key])
        self.redis.start()
        self._configure_cluster()
        env = self._environment(bin_dir)
        self._start_repo_server(bin_dir, env)
        self._start_applicationset_controller(bin_dir, env)
        self._start_application_controller(bin_dir, env)
        return self

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self._network is not None:
            self._network.stop()
            self._network = None
        self.redis.stop()
        self.git.stop()

    def remove(self) -> None:
        self.stop()
        self.redis.remove()
        self.git.remove()
        super().remove()

    @property
    def pids(self) -> list[int]:
        """Every process this instance started (for `make gitops-down`'s last check)."""
        pids = [p.pid for p in self._processes if p.pid is not None]
        if self._network is not None:
            pids.append(self._network.holder_pid)
        return [*pids, *([self.redis.pid] if self.redis.pid else [])]

    @property
    def controller_network(self) -> PrivateNetwork | None:
        """The application controller's private network namespace, while it runs."""
        return self._network

    def _environment(self, bin_dir: Path) -> dict[str, str]:
        tls = self.base_dir / "tls"
        tls.mkdir(exist_ok=True)
        # Argo CD looks up a CA for a git host in a file named after the host.
        shutil.copyfile(self.git.ca_file, tls / self.git.host)
        tmp = self.base_dir / "tmp"
        tmp.mkdir(exist_ok=True)
        return {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.base_dir),
            "TMPDIR": str(tmp),
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_TLS_DATA_PATH": str(tls),
            "ARGOCD_PLUGINSOCKFILEPATH": str(self.base_dir / "plugins"),
            "GIT_CONFIG_NOSYSTEM": "1",
            # Lets `make gitops-down` tell this instance's processes from reused pids.
            "ASSISTENTE_TESTBED_INSTANCE": str(self.base_dir),
            **https_client_env(self.git),
        }

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, log_path=self.log_dir / f"{name}.log", env=env)
        process.start()
        self._processes.append(process)
        return process

    def _start_repo_server(self, bin_dir: Path, env: Mapping[str, str]) -> None:
        metrics = free_port()
        process = self._spawn(
            "argocd-repo-server",
            [
                str(bin_dir / "argocd-repo-server"),
                "--address", "127.0.0.1",
                "--port", str(self.repo_server_port),
                "--metrics-address", "127.0.0.1",
                "--metrics-port", str(metrics),
                "--redis", f"127.0.0.1:{self.redis.port}",
                "--disable-tls",
                "--loglevel", "info",
            ],
            env,
        )  # fmt: skip

        def ready() -> bool:
            process.check_alive()
            return port_open(self.repo_server_port)

        wait_until(ready, timeout=60, what="Argo CD's repo-server", log_path=process.log_path)

    def _start_applicationset_controller(self, bin_dir: Path, env: Mapping[str, str]) -> None:
        probe = free_port()
        process = self._spawn(
            "argocd-applicationset-controller",
            [
                str(bin_dir / "argocd-applicationset-controller"),
                "--namespace", NAMESPACE,
                "--argocd-repo-server", f"127.0.0.1:{self.repo_server_port}",
                "--repo-server-plaintext",
                "--metrics-addr", f"127.0.0.1:{free_port()}",
                "--probe-addr", f"127.0.0.1:{probe}",
                "--webhook-addr", f"127.0.0.1:{free_port()}",
                "--enable-leader-election=false",
                "--loglevel", "info",
            ],
            env,
        )  # fmt: skip

        def ready() -> bool:
            process.check_alive()
            return port_open(probe)

        wait_until(
            ready, timeout=60, what="Argo CD's ApplicationSet controller", log_path=process.log_path
        )

    def _start_application_controller(self, bin_dir: Path, env: Mapping[str, str]) -> None:
        api_port = int(self._api_server().rsplit(":", 1)[1])
        self._network = PrivateNetwork(
            [api_port, self.repo_server_port, self.redis.port], env=env
        ).start()
        argv = [
            str(bin_dir / "argocd-application-controller"),
            "--namespace", NAMESPACE,
            "--repo-server", f"127.0.0.1:{self.repo_server_port}",
            "--repo-server-plaintext",
            "--redis", f"127.0.0.1:{self.redis.port}",
            # Argo CD 3 keeps each resource's health in Redis for its API server and UI, which
            # the test bed does not run; this writes it into the Application, where kubectl
            # (and the tests) read it. The health checks themselves are unchanged.
            "--persist-resource-health",
            "--metrics-port", str(CONTROLLER_METRICS_PORT),
            # A CRD still being established when Argo CD first judges it makes its Application
            # Degraded until the next resync (status-only changes trigger none), and the app of
            # apps meanwhile backs off its retries: the default 120 s + 60 s of jitter made the
            # first sync take anywhere from 44 to 353 s. A cluster's git webhook does not help
            # there; see docs/gitops.md.
            "--app-resync", "15",
            "--app-resync-jitter", "5",
            "--status-processors", "4",
            "--operation-processors", "4",
            "--loglevel", "info",
        ]  # fmt: skip
        process = self._spawn("argocd-application-controller", self._network.command(argv), env)
        network = self._network

        def ready() -> bool:
            process.check_alive()
            return network.port_open(CONTROLLER_METRICS_PORT)

        wait_until(
            ready, timeout=60, what="Argo CD's application controller", log_path=process.log_path
        )

    def _api_server(self) -> str:
        config = yaml.safe_load(self.cluster.kubeconfig.read_text())
        server: str = config["clusters"][0]["cluster"]["server"]
        return server

    def _configure_cluster(self) -> None:
        self.cluster.install_third_party_crds(["argo-cd"])
        if self.cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
            self.cluster.kubectl("create", "namespace", NAMESPACE)
        # What Argo CD's own install manifest provides: an empty argocd-cm (argocd/bootstrap
        # adds the distribution's keys to it) and argocd-secret with the key Argo CD signs its
        # tokens with, made here and never stored in git.
        part_of = {"app.kubernetes.io/part-of": "argocd"}
        self.cluster.kubectl(
            "apply", "--server-side", "--field-manager", "argocd-install", "-f", "-",
            input=yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": "argocd-cm",
                        "namespace": NAMESPACE,
                        "labels": {"app.kubernetes.io/name": "argocd-cm", **part_of},
                    },
                }
            ),
        )  # fmt: skip
        self.cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": "argocd-secret",
                        "namespace": NAMESPACE,
                        "labels": {
                            "app.kubernetes.io/name": "argocd-secret",
                            "app.kubernetes.io/part-of": "argocd",
                        },
                    },
                    "type": "Opaque",
                    "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
                }
            ]
        )

    # -- what a platform engineer does ------------------------------------------------------
    def register_cluster(
        self, name: str = "local", *, overlay: str = "local", revision: str = "main"
    ) -> None:
        """Label this cluster for the ApplicationSet, as `argocd cluster add --label` would."""
        self.cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": f"cluster-{name}",
                        "namespace": NAMESPACE,
                        "labels": {
                            "argocd.argoproj.io/secret-type": "cluster",
                            OVERLAY_LABEL: overlay,
                            REVISION_LABEL: revision,
                        },
                    },
                    "type": "Opaque",
                    "stringData": {
                        "name": name,
                        "server": "https://kubernetes.default.svc",
                        "config": json.dumps({"tlsClientConfig": {"insecure": False}}),
                    },
                }
            ]
        )

    def bootstrap(self) -> None:
        """`kubectl apply --server-side -k argocd/bootstrap`, from the served commit."""
        with tempfile.TemporaryDirectory(prefix="assistente-bootstrap-") as work:
            archive = subprocess.run(
                ["git", "archive", self.served_commit, BOOTSTRAP],
                cwd=self.checkout,
                capture_output=True,
                check=True,
            ).stdout
            archive_path = Path(work) / "bootstrap.tar"
            archive_path.write_bytes(archive)
            with tarfile.open(archive_path) as tar:
                tar.extractall(work, filter="data")
            self.cluster.kubectl(
                "apply", "--server-side", "--force-conflicts", "-k", str(Path(work) / BOOTSTRAP)
            )

    # -- reading Argo CD's state ------------------------------------------------------------
    def application(self, name: str) -> dict[str, Any] | None:
        result = self.cluster.kubectl(
            "get", "applications.argoproj.io", name, "-n", NAMESPACE, "-o", "json", check=False
        )
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise ServiceError(result.stderr.strip())
        app: dict[str, Any] = json.loads(result.stdout)
        return app

    def state(self, name: str) -> AppState | None:
        app = self.application(name)
        return None if app is None else AppState.of(app)

    def refresh(self, name: str) -> None:
        """Ask for a comparison now, as a git webhook does, instead of the 3-minute poll."""
        self.cluster.kubectl(
            "annotate", "--overwrite", "applications.argoproj.io", name, "-n", NAMESPACE,
            "argocd.argoproj.io/refresh=normal",
        )  # fmt: skip

    def wait_for(
        self,
        name: str,
        *,
        sync: str | None = "Synced",
        health: str | None = "Healthy",
        revision: str | None = None,
        timeout: float = 300,
    ) -> AppState:
        """Poll until the application shows this sync status, health and revision."""
        seen: list[AppState | None] = [None]

        def reached() -> bool:
            for process in self._processes:
                process.check_alive()
            state = seen[0] = self.state(name)
            return (
                state is not None
                and (sync is None or state.sync == sync)
                and (health is None or state.health == health)
                and (revision is None or state.revision == revision)
            )

        try:
            wait_until(reached, timeout=timeout, what=f"application {name}", interval=0.5)
        except ServiceError as error:
            raise ServiceError(f"{error}; last state: {seen[0]}; logs in {self.log_dir}") from None
        state = seen[0]
        assert state is not None
        return state
