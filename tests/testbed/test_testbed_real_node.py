"""The real node keeps to itself: pods resolve and reach Services, and nothing else; nothing of it
listens on the host outside loopback; kwok manages only its own nodes, and workloads land on
the real node."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from typing import Any

import pytest
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.images import ensure_images
from assistente_testbed.node import NODE_NAME
from assistente_testbed.process import wait_until

pytestmark = pytest.mark.cluster

PROBE = textwrap.dedent(
    """
    import json, socket, ssl
    result = {}
    for name in ("kubernetes.default.svc.cluster.local", "kube-dns.kube-system", "pypi.org"):
        try:
            result[name] = socket.gethostbyname(name)
        except OSError as error:
            result[name] = f"error: {error}"
    try:
        socket.create_connection(("1.1.1.1", 443), timeout=3)
        result["outside"] = "connected"
    except OSError as error:
        result["outside"] = f"error: {error}"
    ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    with socket.create_connection(("kubernetes.default.svc", 443), timeout=5) as raw:
        context = ssl.create_default_context(cafile=ca)
        with context.wrap_socket(raw, server_hostname="kubernetes.default.svc") as tls:
            result["api_tls"] = tls.version()
    print(json.dumps(result), flush=True)
    """
)


def _node_pids(cluster: KubeCluster) -> set[int]:
    assert cluster.node is not None
    marker = str(cluster.node.dir)
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True)
    return {int(line.split()[0]) for line in out.stdout.splitlines() if marker in line}


def test_the_node_has_no_route_out_and_listens_on_loopback_only(real_cluster: KubeCluster) -> None:
    node = real_cluster.node
    assert node is not None
    routes = subprocess.run(
        ["ip", "-n", node.id, "-4", "route", "show"], capture_output=True, text=True, check=True
    ).stdout
    assert "default" not in routes
    assert node.network.pod_cidr in routes
    pids = _node_pids(real_cluster)
    assert pids, "the node's processes run"
    listeners = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True)
    for line in listeners.stdout.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            assert line.split()[3].startswith(("127.0.0.1:", "[::1]:")), line


def test_kwok_keeps_to_its_own_nodes_and_workloads_land_on_the_real_node(
    real_cluster: KubeCluster,
) -> None:
    node: Any = real_cluster.get_json("node", NODE_NAME)
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    kwok_nodes: Any = real_cluster.get_json("nodes", "-l", "type=kwok")["items"]
    assert kwok_nodes
    for kwok_node in kwok_nodes:
        taints = kwok_node["spec"].get("taints", [])
        assert {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"} in taints


def test_a_pod_resolves_services_reaches_the_api_and_nothing_outside(
    real_cluster: KubeCluster,
) -> None:
    [python] = ensure_images(["python-base"]).values()
    real_cluster.load_images([python])
    pod: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "network-probe", "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": python.ref,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", PROBE],
                }
            ],
        },
    }
    real_cluster.apply([pod])

    def finished() -> bool:
        phase = real_cluster.kubectl(
            "get", "pod", "network-probe", "-o", "jsonpath={.status.phase}", check=False
        ).stdout
        return phase in ("Succeeded", "Failed")

    wait_until(finished, timeout=120, what="the probe pod to finish", interval=1)
    placed: Any = real_cluster.get_json("pod", "network-probe")
    assert placed["spec"]["nodeName"] == NODE_NAME
    # `kubectl logs` goes API server -> egress relay -> kubelet inside the node's namespace.
    result = json.loads(real_cluster.kubectl("logs", "network-probe").stdout)
    assert result["kubernetes.default.svc.cluster.local"] == "10.0.0.1"
    assert result["kube-dns.kube-system"] == "10.0.0.10"
    assert result["pypi.org"].startswith("error"), "no name outside the cluster resolves"
    assert "unreachable" in result["outside"], "no route leaves the node"
    assert result["api_tls"].startswith("TLSv1")
    real_cluster.kubectl("delete", "pod", "network-probe", "--wait=false")
