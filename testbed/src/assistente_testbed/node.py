"""A real Kubernetes node beside kwok's simulated ones: containerd + runc run real containers,
the kubelet and kube-proxy are built from the same Kubernetes sources as the control plane.

Everything the node creates on the host is named after the cluster's work directory (two
checkouts run two nodes at once) and removed by `stop()`:

- a network namespace `adn-<id>` with a bridge for the pods and no link to the host: kube-proxy's
  and the kubelet's iptables chains, the pods' veths and routes all live in it, and a packet
  for an unknown address has nowhere to go (there is no default route);
- a mount namespace, so the kubelet's and containerd's mounts (volumes, overlay snapshots, pod
  network namespaces) never show on the host and vanish with the node's last process;
- a cgroup `/adn-<id>` (cgroup v1, see docs/testbed.md) that holds every pod;
- the processes, each started in its own session and found again by pid file and work directory.

The kube-apiserver reaches the node only through the relay in `netns.py` (its egress proxy); the
node reaches the API server (and test bed services) through the same relay process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistente_testbed import progress
from assistente_testbed.image_store import seed_root
from assistente_testbed.images import BuiltImage
from assistente_testbed.netns import create_netns, delete_netns, ip_in, netns_path
from assistente_testbed.pki import issue_client_cert, write_kubeconfig
from assistente_testbed.process import ManagedProcess, ServiceError, free_port, wait_until
from assistente_testbed.tools import cached_bin_dir

NODE_NAME = "assistente-node"
NODE_LABEL = "assistente.digital/node"  # value "real" on this node


@dataclass(frozen=True)
class NodeNetwork:
    """Addresses inside the node's namespace: the same in every cluster, since no two nodes
    share a namespace and the host never routes them."""

    pod_cidr: str = "10.244.0.0/24"
    node_ip: str = "10.244.0.1"  # the bridge: the pods' gateway and the node's InternalIP
    service_cidr: str = "10.0.0.0/24"  # kube-apiserver's default range, made explicit
    kubernetes_service_ip: str = "10.0.0.1"
    dns_service_ip: str = "10.0.0.10"
    bridge: str = "cbr0"
    kubelet_port: int = 10250


NETWORK = NodeNetwork()

# What the kubelet wants of these kernel settings (it would write them, host-wide, otherwise).
# The node's mount namespace shows it these values read-only, and `protectKernelDefaults` makes
# it only check them, so the machine's own settings are never touched.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": 1,
    "vm/panic_on_oom": 0,
    "kernel/panic": 10,
    "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000,
    "kernel/keys/root_maxbytes": 25000000,
}
CGROUP_V1 = Path("/sys/fs/cgroup")
PROCESSES = ("kube-proxy", "kubelet", "containerd", "holder")


def node_id(workdir: Path) -> str:
    """A short name unique to one work directory (hence one checkout and one cluster)."""
    return "adn-" + hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:8]


def cni_plugin_dir() -> Path:
    """Where Debian's containernetworking-plugins put the plugins."""
    for candidate in (Path("/usr/lib/cni"), Path("/opt/cni/bin")):
        if (candidate / "bridge").exists():
            return candidate
    raise ServiceError("CNI plugins not found: apt-get install containernetworking-plugins")


def _log(message: str) -> None:
    progress.report("node", message)


class RealNode:
    """One real node. `prepare()` makes its namespace (before the control plane starts, so the
    API server's egress relay has somewhere to go); `start()` runs the runtime, kubelet and
    kube-proxy once the API server is up."""

    def __init__(self, workdir: Path, *, network: NodeNetwork = NETWORK) -> None:
        self.dir = workdir.resolve()
        self.id = node_id(self.dir)
        self.network = network
        self.netns = netns_path(self.id)
        self.cgroup = f"/{self.id}"
        self.containerd_socket = self.dir / "containerd" / "containerd.sock"
        self.logs = self.dir / "logs"
        self.egress_socket = self.dir / "egress.sock"

    # -- paths and helpers --------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def _spawn(self, name: str, argv: list[str], *, in_node: bool = True) -> int:
        if in_node:
            holder = int(self._pid_file("holder").read_text())
            argv = ["nsenter", f"--target={holder}", "--mount", f"--net={self.netns}", "--", *argv]
        process = ManagedProcess(name, argv, log_path=self.logs / f"{name}.log")
        process.start()
        assert process.pid is not None
        self._pid_file(name).write_text(f"{process.pid}\n")
        return process.pid

    def _alive(self, name: str) -> bool:
        path = self._pid_file(name)
        if not path.exists():
            return False
        try:
            os.kill(int(path.read_text()), 0)
        except (ProcessLookupError, ValueError):
            return False
        return True

    def _check_alive(self, name: str) -> None:
        if not self._alive(name):
            log = self.logs / f"{name}.log"
            tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
            raise ServiceError(f"{name} of the real node exited\n" + "\n".join(tail))

    def ctr(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    # -- 1. the namespace -----------------------------------------------------------------
    def prepare(self) -> None:
        """The network namespace with the pods' bridge, and a route for Service addresses (so
        the relays can dial a ClusterIP; kube-proxy rewrites it). No default route."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if self.netns.exists():
            return
        net = self.network
        prefix = net.pod_cidr.split("/")[1]
        create_netns(self.id)
        ip_in(self.id, "link", "add", net.bridge, "type", "bridge")
        ip_in(self.id, "addr", "add", f"{net.node_ip}/{prefix}", "dev", net.bridge)
        ip_in(self.id, "link", "set", net.bridge, "up")
        ip_in(self.id, "route", "add", net.service_cidr, "dev", net.bridge)

    def start_relay(self, apiserver_port: int) -> None:
        """The API server at the node's address (for the kubelet, kube-proxy and pods through
        the `kubernetes` Service), and the API server's egress proxy into the node."""
        ready = self.dir / "relay.ready"
        ready.unlink(missing_ok=True)
        net = self.network
        argv = [
            sys.executable, "-m", "assistente_testbed.netns",
            "--forward",
            f"{self.netns}:{net.node_ip}:{apiserver_port}=host:127.0.0.1:{apiserver_port}",
            "--egress-uds", str(self.egress_socket), "--egress-netns", str(self.netns),
            "--egress-network", net.pod_cidr, "--egress-network", net.service_cidr,
            "--ready-file", str(ready),
        ]  # fmt: skip
        self._spawn("relay", argv, in_node=False)
        wait_until(
            ready.exists,
            timeout=30,
            what="the node's relay",
            log_path=self.logs / "relay.log",
        )

    def _relay(self, name: str, forward: str) -> None:
        """A relay process for `forward`; one already running for it is kept, so publishing
        the same port again (e.g. `make cluster-demo` after `make cluster`) does not cut the
        connections pods have through it."""
        spec = self.dir / f"{name}.forward"
        if self._alive(name) and spec.exists() and spec.read_text() == forward:
            return
        self._kill(name)
        spec.write_text(forward)
        ready = self.dir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "assistente_testbed.netns",
            "--forward", forward, "--ready-file", str(ready),
        ]  # fmt: skip
        self._spawn(name, argv, in_node=False)

        def listening() -> bool:
            self._check_alive(name)
            return ready.exists()

        wait_until(listening, timeout=30, what=name, log_path=self.logs / f"{name}.log")

    def _kill(self, name: str) -> None:
        path = self._pid_file(name)
        if path.exists():
            with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
                os.killpg(int(path.read_text()), signal.SIGKILL)
            path.unlink()

    def publish_host_port(self, host_port: int, node_port: int) -> str:
        """A service on the host's 127.0.0.1:`host_port`, reachable from pods at the node's
        address (returned) and `node_port`. Nothing listens on the host for it."""
        self._relay(
            f"relay-publish-{node_port}",
            f"{self.netns}:{self.network.node_ip}:{node_port}=host:127.0.0.1:{host_port}",
        )
        return self.network.node_ip

    def open_to_host(self, address: str, port: int) -> int:
        """An address inside the node (a ClusterIP, a pod) reachable from the host at
        127.0.0.1 and the returned port."""
        local = free_port()
        self._relay(f"relay-node-{local}", f"host:127.0.0.1:{local}={self.netns}:{address}:{port}")
        return local

    def egress_config(self) -> Path:
        """kube-apiserver --egress-selector-config-file: cluster traffic goes through our relay."""
        config = {
            "apiVersion": "apiserver.k8s.io/v1beta1",
            "kind": "EgressSelectorConfiguration",
            "egressSelections": [
                {
                    "name": "cluster",
                    "connection": {
                        "proxyProtocol": "HTTPConnect",
                        "transport": {"uds": {"udsName": str(self.egress_socket)}},
                    },
                }
            ],
        }
        path = self.dir / "egress-selector.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    # -- 2. runtime, kubelet, kube-proxy ----------------------------------------------------
    def seed_runtime(self, images: Sequence[BuiltImage]) -> None:
        """The runtime's root directory, holding `images` when containerd starts: hard links to
        the machine's containerd store of that set of images (image_store.py), made the first
        time. Call it once, before `start()`; `load_images` adds more later (slowly)."""
        root = self.dir / "containerd" / "root"
        if not root.exists():
            seed_root(images, root)

    def start(self, *, pki_dir: Path, apiserver_port: int, pause_image: str) -> None:
        start = time.monotonic()
        self._make_cgroup()
        self._start_holder()
        self._start_containerd(pause_image)
        server = f"https://{self.network.node_ip}:{apiserver_port}"
        self._start_kubelet(pki_dir, server)
        self._start_kube_proxy(pki_dir, server)
        _log(f"containerd, kubelet and kube-proxy up in {time.monotonic() - start:.0f}s")

    def _make_cgroup(self) -> None:
        """The kubelet's cgroupRoot, in every v1 hierarchy (cpuset needs its CPUs and memory
        nodes copied from the parent before anything can join it)."""
        for hierarchy in self._hierarchies():
            path = hierarchy / self.cgroup.lstrip("/")
            path.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (path / knob).write_text((hierarchy / knob).read_text())

    @staticmethod
    def _hierarchies() -> list[Path]:
        if not (CGROUP_V1 / "memory").is_dir():
            raise ServiceError("the real node expects cgroup v1 (see docs/testbed.md)")
        return sorted(p for p in CGROUP_V1.iterdir() if p.is_dir() and p.name != "unified")

    def _start_holder(self) -> None:
        """A process that owns the node's mount namespace: the kubelet's sysctls, read-only,
        and the node's own directories where kubelet and containerd use fixed paths."""
        sysctl_dir = self.dir / "sysctl"
        sysctl_dir.mkdir(exist_ok=True)
        lines = ["set -eu"]
        for key, value in KUBELET_SYSCTLS.items():
            target = Path("/proc/sys") / key
            if int(target.read_text().split()[0]) == value:
                continue
            shown = sysctl_dir / key.replace("/", ".")
            shown.write_text(f"{value}\n")
            lines += [f"mount --bind {shown} {target}", f"mount -o remount,bind,ro {target}"]
        # The device-plugin socket of the kubelet and the shims' sockets of containerd live at
        # fixed paths; each node sees its own directory there.
        for fixed, own in (("/var/lib/kubelet", "kubelet"), ("/run/containerd", "run-containerd")):
            Path(fixed).mkdir(parents=True, exist_ok=True)
            (self.dir / own).mkdir(exist_ok=True)
            lines.append(f"mount --bind {self.dir / own} {fixed}")
        # containerd names each pod's network namespace under /run/netns: keep those names in
        # the node's mount namespace, off the host's `ip netns` list.
        lines.append("mount -t tmpfs -o mode=0755,size=1m node-netns /run/netns")
        lines.append("exec sleep infinity")
        script = self.dir / "holder.sh"
        script.write_text("\n".join(lines) + "\n")
        self._spawn(
            "holder",
            ["unshare", "--mount", "--propagation", "private", "sh", str(script)],
            in_node=False,
        )
        pid = int(self._pid_file("holder").read_text())
        marker = str(self.dir / "kubelet")

        def mounted() -> bool:
            self._check_alive("holder")
            with contextlib.suppress(OSError):
                return marker in Path(f"/proc/{pid}/mountinfo").read_text() and (
                    Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep")
                )
            return False

        wait_until(mounted, timeout=15, what="the node's mount namespace")

    def _start_containerd(self, pause_image: str) -> None:
        base = self.dir / "containerd"
        cni = self.dir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        net = self.network
        conflist = {
            "cniVersion": "1.0.0",
            "name": "assistente",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": net.bridge,
                    "isGateway": True,
                    # Pods talk to the node and to each other only: nothing to masquerade.
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": net.pod_cidr, "gateway": net.node_ip}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(cni / "ipam"),
                    },
                }
            ],
        }
        (cni / "net.d" / "10-assistente.conflist").write_text(json.dumps(conflist, indent=2))
        config = f"""\
version = 2
root = "{base / "root"}"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{self.containerd_socket}.ttrpc"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # This machine's root lacks CAP_SYS_RESOURCE: without this, every sandbox fails to start.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{base / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_plugin_dir()}"
    conf_dir = "{cni / "net.d"}"
    max_conf_num = 1
"""
        (base).mkdir(parents=True, exist_ok=True)
        config_path = base / "config.toml"
        config_path.write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(config_path)])

        def serving() -> bool:
            self._check_alive("containerd")
            return (
                subprocess.run(
                    ["ctr", "--address", str(self.containerd_socket), "version"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            )

        wait_until(serving, timeout=60, what="containerd", log_path=self.logs / "containerd.log")

    def image_refs(self) -> set[str]:
        """The references of the images in the node's runtime."""
        return set(self.ctr("images", "list", "--quiet").split())

    def load_images(self, images: Sequence[BuiltImage]) -> None:
        """Imports images the runtime does not hold yet from their archives (no registry is
        ever asked). Slow for big images: prefer passing them to `start()`."""
        present = self.image_refs()
        for image in images:
            if image.ref in present:
                continue
            started = time.monotonic()
            self.ctr("images", "import", str(image.archive))
            _log(f"image loaded: {image.archive.name} ({time.monotonic() - started:.0f}s)")

    def _start_kubelet(self, pki_dir: Path, server: str) -> None:
        kubelet_dir = self.dir / "kubelet-config"
        cert, key = issue_client_cert(
            pki_dir, kubelet_dir, "kubelet",
            common_name=f"system:node:{NODE_NAME}", organization="system:nodes",
        )  # fmt: skip
        kubeconfig = write_kubeconfig(
            kubelet_dir / "kubeconfig", server=server, ca=pki_dir / "ca.crt", cert=cert, key=key,
            user=f"system:node:{NODE_NAME}",
        )  # fmt: skip
        net = self.network
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": net.node_ip,
            "port": net.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup,
            # This machine mounts cgroup v1 (docs/testbed.md says why we stay on it).
            "failCgroupV1": False,
            "failSwapOn": False,
            "protectKernelDefaults": True,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDNS": [net.dns_service_ip],
            "clusterDomain": "cluster.local",
            # Pods never inherit the host's resolvers: cluster DNS is all they get.
            "resolvConf": "",
            "serializeImagePulls": False,
            # Images cannot be pulled again here, so never garbage-collect them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "maxPods": 110,
        }
        config_path = kubelet_dir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        kubelet = cached_bin_dir("k8s-node") / "kubelet"
        self._spawn(
            "kubelet",
            [
                str(kubelet), f"--config={config_path}", f"--kubeconfig={kubeconfig}",
                "--root-dir=/var/lib/kubelet", f"--hostname-override={NODE_NAME}",
                f"--node-ip={net.node_ip}", f"--node-labels={NODE_LABEL}=real",
            ],
        )  # fmt: skip

    def _start_kube_proxy(self, pki_dir: Path, server: str) -> None:
        proxy_dir = self.dir / "kube-proxy-config"
        cert, key = issue_client_cert(
            pki_dir, proxy_dir, "kube-proxy", common_name="system:kube-proxy"
        )
        kubeconfig = write_kubeconfig(
            proxy_dir / "kubeconfig", server=server, ca=pki_dir / "ca.crt", cert=cert, key=key,
            user="system:kube-proxy",
        )  # fmt: skip
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": NODE_NAME,
            "mode": "iptables",
            "clusterCIDR": self.network.pod_cidr,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "nodePortAddresses": [f"{self.network.node_ip}/32"],
            # conntrack limits are host-wide settings: leave the machine's as they are.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
        config_path = proxy_dir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        kube_proxy = cached_bin_dir("k8s-node") / "kube-proxy"
        self._spawn("kube-proxy", [str(kube_proxy), f"--config={config_path}"])

    def pod_rss_mib(self, pod_uid: str) -> float | None:
        """Resident memory of a pod's containers (cgroup v1 memory.stat `total_rss`)."""
        root = CGROUP_V1 / "memory" / self.cgroup.lstrip("/") / "kubepods"
        for path in root.rglob(f"pod{pod_uid}"):
            stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
            return round(int(stat["total_rss"]) / 2**20, 1)
        return None

    def check_alive(self) -> None:
        for name in ("holder", "containerd", "kubelet", "kube-proxy", "relay"):
            self._check_alive(name)

    # -- 3. teardown -------------------------------------------------------------------
    def _own_processes(self) -> list[int]:
        """Every process whose command line names this node's directory (shims included)."""
        marker = str(self.dir)
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if marker in entry.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(
                        errors="replace"
                    ):
                        pids.append(int(entry.name))
        return pids

    def _cgroup_processes(self) -> list[int]:
        pids: list[int] = []
        root = CGROUP_V1 / "pids" / self.cgroup.lstrip("/")
        if root.is_dir():
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids += [int(p) for p in procs.read_text().split()]
        return pids

    def stop(self) -> None:
        """Stops every process of the node and removes what it made on the host."""
        pid_files = [self._pid_file(name) for name in PROCESSES]
        pid_files += sorted(self.dir.glob("relay*.pid"))
        for path in pid_files:
            self._kill(path.stem)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            leftovers = self._own_processes() + self._cgroup_processes()
            if not leftovers:
                break
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        self._remove_cgroup()
        delete_netns(self.id)

    def _remove_cgroup(self) -> None:
        if not (CGROUP_V1 / "memory").is_dir():
            return
        for hierarchy in self._hierarchies():
            root = hierarchy / self.cgroup.lstrip("/")
            if not root.is_dir():
                continue
            # Children first: a cgroup directory can only go once it is empty.
            for path in sorted(
                (p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                with contextlib.suppress(OSError):
                    path.rmdir()
            with contextlib.suppress(OSError):
                root.rmdir()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
