"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (which plays the kubelet of simulated nodes), run by kwokctl's binary
runtime from binaries this project builds from source; optionally with a real node beside the
simulated ones (`real_node=True`, see node.py), cluster DNS and tainted kwok nodes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from assistente_testbed import cluster_dns
from assistente_testbed.gomodules import module_dir
from assistente_testbed.images import NODE_IMAGES, BuiltImage, ensure_images
from assistente_testbed.node import NODE_NAME, RealNode
from assistente_testbed.paths import read_versions, state_dir
from assistente_testbed.process import Lifecycle, ServiceError, free_port, wait_until
from assistente_testbed.tools import cached_bin_dir, ensure_tools

# kwok's nodes carry this taint when a real node is present, so workloads land on the real node
# unless they tolerate it (as kwok's own documentation suggests for simulated nodes).
KWOK_TAINT = "kwok.x-k8s.io/node=fake:NoSchedule"

# The CRDs of third-party projects our manifests refer to, read from the Go module cache of each
# project at the pinned version (never copied into this repository).
THIRD_PARTY_CRDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "prometheus-operator": (
        "github.com/prometheus-operator/prometheus-operator",
        "PROMETHEUS_OPERATOR_VERSION",
        (
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
    "cloudnative-pg": (
        "github.com/cloudnative-pg/cloudnative-pg",
        "CNPG_VERSION",
        (
            "config/crd/bases/postgresql.cnpg.io_clusters.yaml",
            "config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
        ),
    ),
    "external-secrets": (
        "github.com/external-secrets/external-secrets",
        "EXTERNAL_SECRETS_VERSION",
        ("deploy/crds/bundle.yaml",),
    ),
    "argo-cd": (
        "github.com/argoproj/argo-cd/v3",
        "ARGOCD_VERSION",
        (
            "manifests/crds/application-crd.yaml",
            "manifests/crds/applicationset-crd.yaml",
            "manifests/crds/appproject-crd.yaml",
        ),
    ),
}


def third_party_crd_files() -> dict[str, list[Path]]:
    """Download (once, through the Go module proxy) the pinned modules and list their CRD files."""
    return {
        name: [module_dir(module, version_key) / f for f in files]
        for name, (module, version_key, files) in THIRD_PARTY_CRDS.items()
    }


class KubeCluster(Lifecycle):
    """One kwokctl cluster. `start()` returns once nodes are Ready and pods can be created."""

    def __init__(
        self,
        *,
        name: str | None = None,
        workdir: Path | None = None,
        kubeconfig: Path | None = None,
        nodes: int = 3,
        third_party_crds: bool = True,
        real_node: bool = False,
        node_images: Iterable[BuiltImage] = (),
    ) -> None:
        self.name = name or f"ad-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="assistente-kwok-"))
        self._owns_workdir = workdir is None
        self.kubeconfig = (kubeconfig or self.workdir / "kubeconfig").resolve()
        self.nodes = nodes
        self.with_third_party_crds = third_party_crds
        self.bin_dir = state_dir() / "bin"
        self.log_path = self.workdir / "kwokctl.log"
        self.apiserver_port = 0
        self.node_join_seconds: float | None = None
        self.node: RealNode | None = RealNode(self.workdir / "node") if real_node else None
        # In the real node's runtime from its start, besides its own pause and CoreDNS images
        # (cheap: hard links to a store shared by the machine's nodes, see image_store.py).
        self.node_images = tuple(node_images)

    # -- commands -------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        versions = read_versions()
        return dict(
            os.environ,
            KWOK_WORKDIR=str(self.workdir),
            KWOK_RUNTIME="binary",
            KWOK_KUBE_VERSION=versions["K8S_VERSION"],
            PATH=f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        )

    def _kwokctl(self, *args: str, timeout: float = 300) -> None:
        with self.log_path.open("a") as log:
            log.write(f"$ kwokctl {' '.join(args)}\n")
            log.flush()
            result = subprocess.run(
                [str(self.bin_dir / "kwokctl"), *args],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
            raise ServiceError(f"kwokctl {args[0]} failed ({result.returncode}):\n{tail}")

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ServiceError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def get_json(self, *args: str) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return data

    # -- lifecycle ------------------------------------------------------------------------
    def _write_config(self) -> Path:
        binaries = {
            "k8s": cached_bin_dir("k8s"),
            "etcd": cached_bin_dir("etcd"),
            "kwok": cached_bin_dir("kwok"),
        }
        config: dict[str, Any] = {
            "kind": "KwokctlConfiguration",
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "options": {
                "runtime": "binary",
                # kwokctl binds 0.0.0.0 by default; this machine may only listen on loopback.
                "bindAddress": "127.0.0.1",
                "kubeBinaryPrefix": str(binaries["k8s"]),
                "kubectlBinary": str(binaries["k8s"] / "kubectl"),
                "etcdBinary": str(binaries["etcd"] / "etcd"),
                "etcdctlBinary": str(binaries["etcd"] / "etcdctl"),
                "kwokControllerBinary": str(binaries["kwok"] / "kwok"),
                "cacheDir": str(self.workdir / "cache"),
                "disableQPSLimits": True,
                # kwokctl hands out ports counting down from 32767, the same ones in every
                # checkout: clusters created at the same moment then fight over them. Ports the
                # kernel picks at random do not collide that way.
                "kubeApiserverPort": self.apiserver_port,
                "etcdPort": free_port(),
                "etcdPeerPort": free_port(),
                "kubeControllerManagerPort": free_port(),
                "kubeSchedulerPort": free_port(),
                "kwokControllerPort": free_port(),
            },
        }
        if self.node is not None:
            config["options"]["kubeApiserverCertSANs"] = [
                self.node.network.node_ip,
                self.node.network.kubernetes_service_ip,
            ]
            config["componentsPatches"] = self._real_node_patches(self.node)
        path = self.workdir / "kwokctl.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _real_node_patches(self, node: RealNode) -> list[dict[str, object]]:
        """The API server reaches the node only through its egress relay, authenticates to the
        kubelet, and publishes itself at the node's address; kwok leaves the real node alone."""
        pki = self.workdir / "clusters" / self.name / "pki"

        def args(*pairs: tuple[str, str], override: bool = False) -> list[dict[str, object]]:
            return [{"key": k, "value": v, "override": override} for k, v in pairs]

        return [
            {
                "name": "kube-apiserver",
                "extraArgs": args(
                    ("advertise-address", node.network.node_ip),
                    ("service-cluster-ip-range", node.network.service_cidr),
                    ("egress-selector-config-file", str(node.egress_config())),
                    ("kubelet-client-certificate", str(pki / "admin.crt")),
                    ("kubelet-client-key", str(pki / "admin.key")),
                    ("kubelet-preferred-address-types", "InternalIP"),
                ),
            },
            {
                "name": "kwok-controller",
                "extraArgs": [
                    *args(("manage-all-nodes", "false"), override=True),
                    *args(("manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake")),
                ],
            },
        ]

    def start(self) -> KubeCluster:
        groups = ("k8s", "etcd", "kwok", "kustomize")
        ensure_tools(groups + (("k8s-node", "coredns") if self.node is not None else ()))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        node_images: dict[str, BuiltImage] = {}
        self.apiserver_port = free_port()
        if self.node is not None:
            node_images = ensure_images(NODE_IMAGES)
            self.node.prepare()
            # Before the control plane: the first time for a set of images this makes the store.
            self.node.seed_runtime([*node_images.values(), *self.node_images])
            self.node.start_relay(self.apiserver_port)
        config = self._write_config()
        self._kwokctl(
            "--config",
            str(config),
            "create",
            "cluster",
            "--name",
            self.name,
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            "180s",
        )
        self._protect_credentials()
        self._kwokctl("--name", self.name, "scale", "node", "--replicas", str(self.nodes))
        wait_until(
            self._nodes_ready,
            timeout=120,
            what=f"{self.nodes} Ready nodes",
            interval=0.5,
            log_path=self.log_path,
        )
        # The ServiceAccount admission plugin rejects pods until the token controller made it.
        wait_until(
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            timeout=120,
            what="the default ServiceAccount",
            interval=0.5,
        )
        if self.node is not None:
            self._start_real_node(node_images)
        if self.with_third_party_crds:
            self.install_third_party_crds()
        return self

    def _start_real_node(self, images: dict[str, BuiltImage]) -> None:
        assert self.node is not None
        started = time.monotonic()
        self.kubectl("taint", "nodes", "--selector=type=kwok", KWOK_TAINT, "--overwrite")
        self.node.start(
            pki_dir=self.workdir / "clusters" / self.name / "pki",
            apiserver_port=self.apiserver_port,
            pause_image=images["pause"].ref,
        )

        def node_ready() -> bool:
            assert self.node is not None
            self.node.check_alive()
            return self._node_ready(NODE_NAME)

        wait_until(node_ready, timeout=180, what=f"node {NODE_NAME} Ready", interval=1)
        self.node_join_seconds = time.monotonic() - started
        self.apply(cluster_dns.manifests(images["coredns"].ref, self.node.network))
        self.kubectl(
            "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s",
            timeout=200,
        )  # fmt: skip

    def _node_ready(self, name: str) -> bool:
        result = self.kubectl("get", "node", name, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def load_images(self, images: Iterable[BuiltImage]) -> None:
        """Puts images into the real node's runtime (pods use imagePullPolicy IfNotPresent);
        those already there (e.g. passed as `node_images`) are skipped."""
        if self.node is None:
            raise ServiceError("this cluster has no real node to load images into")
        self.node.load_images(list(images))

    def _protect_credentials(self) -> None:
        # kwokctl writes private keys and the admin kubeconfig world-readable; only we need them.
        secrets = [self.kubeconfig, *(self.workdir / "clusters" / self.name).glob("**/*.key")]
        for path in secrets:
            path.chmod(0o600)

    def _nodes_ready(self) -> bool:
        result = self.kubectl("get", "nodes", "-o", "json", check=False)
        if result.returncode != 0:
            return False
        items = json.loads(result.stdout)["items"]
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.nodes

    def third_party_crd_files(self) -> dict[str, list[Path]]:
        return third_party_crd_files()

    def install_third_party_crds(self, names: Iterable[str] | None = None) -> None:
        files = third_party_crd_files()
        selected = list(names) if names is not None else list(files)
        paths = [str(p) for name in selected for p in files[name]]
        args: list[str] = ["apply", "--server-side", "--force-conflicts"]
        for path in paths:
            args += ["-f", path]
        self.kubectl(*args)
        # `kubectl wait` fails at once while a new CRD has no status yet: poll it instead.
        file_args = [a for p in paths for a in ("-f", p)]
        wait_until(
            lambda: (
                self.kubectl(
                    "wait", "--for=condition=Established", "--timeout=10s", *file_args, check=False
                ).returncode
                == 0
            ),
            timeout=90,
            what="the third-party CRDs Established",
            interval=0.5,
        )

    def apply(self, manifests: str | Sequence[dict[str, object]]) -> None:
        text = manifests if isinstance(manifests, str) else yaml.safe_dump_all(manifests)
        self.kubectl("apply", "--server-side", "-f", "-", input=text)

    def _cluster_processes(self) -> list[int]:
        """PIDs whose command line points into this cluster's work directory."""
        marker = str(self.workdir / "clusters" / self.name)
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                if marker in cmdline:
                    pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
        with contextlib.suppress(ServiceError, subprocess.TimeoutExpired, FileNotFoundError):
            self._kwokctl("delete", "cluster", "--name", self.name, timeout=120)
        # Whatever kwokctl could not stop must not outlive us.
        for pid in self._cluster_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def close(self) -> None:
        self.remove()
