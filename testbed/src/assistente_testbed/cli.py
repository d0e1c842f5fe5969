"""`assistente-testbed`: the local services behind `make cluster` and `make up`.

`make cluster` (with its real node) also leaves, for the tools that deploy onto it
(`make cluster-demo`, `make pulumi-up STACK=onprem`), a PostgreSQL the pods reach at the node's
address, and `.local/local-cluster.json`: the kubeconfig, the images in the node's runtime
(component -> reference) and that PostgreSQL (host and port as pods see them, a database for
the tools, the superuser and the file holding its password; Rasa's own role and database, and
the file holding that role's password).
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from assistente_testbed.cluster import KubeCluster
from assistente_testbed.images import BuiltImage
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import ServiceError

LOCAL_CLUSTER_NAME = "assistente"
# The database `make cluster` creates for tools that deploy an assistant (Pulumi's onprem stack).
TOOLS_DATABASE = "assistente"
# Rasa's own role and database beside it (the resource's postgres.rasaSecretRef).
TOOLS_RASA_DATABASE = "rasa"
POSTGRES_NODE_PORT = 5432


def local_cluster_info() -> Path:
    """What `make cluster` tells the tools that deploy onto it (see the module's docstring)."""
    return state_dir() / "local-cluster.json"


def cluster_postgres() -> PostgresServer:
    """The PostgreSQL of `make cluster` (kept across commands, its data under .local/)."""
    return PostgresServer(base_dir=state_dir() / "cluster-postgres")


def rasa_password_file() -> Path:
    """The password of the tools' Rasa role (0600, kept with the server's data)."""
    return state_dir() / "cluster-postgres-rasa-password"


def _ensure_tools_rasa_database(postgres: PostgresServer) -> None:
    path = rasa_password_file()
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(24) + "\n")
    postgres.ensure_owned_database(TOOLS_RASA_DATABASE, path.read_text().strip())


def local_cluster(*, real_node: bool = True, node_images: Iterable[BuiltImage] = ()) -> KubeCluster:
    """The long-lived cluster of `make cluster`, with its kubeconfig at .local/kubeconfig."""
    return KubeCluster(
        name=LOCAL_CLUSTER_NAME,
        workdir=state_dir() / "kwok",
        kubeconfig=state_dir() / "kubeconfig",
        real_node=real_node,
        node_images=node_images,
    )


def _running(cluster: KubeCluster) -> bool:
    return (
        cluster.kubeconfig.exists() and cluster.kubectl("get", "nodes", check=False).returncode == 0
    )


def cluster_up(args: argparse.Namespace) -> int:
    from assistente_testbed.images import APP_IMAGES, ensure_images
    from assistente_testbed.operator_runner import install_and_run, install_in_cluster

    real_node = not args.no_real_node
    cluster = local_cluster(real_node=real_node)
    if _running(cluster):
        print(f"cluster '{cluster.name}' is already running; kubeconfig: {cluster.kubeconfig}")
        return 0
    # Built first (minutes the first time), so the node starts with them in its runtime.
    images = ensure_images(APP_IMAGES) if real_node else {}
    cluster = local_cluster(real_node=real_node, node_images=images.values())
    node = " and a real node (containerd, kubelet, kube-proxy, CoreDNS)" if cluster.node else ""
    print(
        f"starting cluster '{cluster.name}' (etcd, kube-apiserver, controller-manager, "
        f"scheduler, kwok with {args.nodes} nodes{node}) on 127.0.0.1 ...",
        flush=True,
    )
    cluster.nodes = args.nodes
    postgres = cluster_postgres()
    try:
        cluster.start()
        if cluster.node is not None:
            install_in_cluster(cluster, images["operator"].ref)
            print("operator running as a pod (namespace assistente-operator-system)")
            postgres.start()
            postgres.detach()
            postgres.ensure_database(TOOLS_DATABASE)
            _ensure_tools_rasa_database(postgres)
            host = cluster.node.publish_host_port(postgres.port, POSTGRES_NODE_PORT)
            _write_info(cluster, images, postgres, host)
            print(f"PostgreSQL for the pods at {host}:{POSTGRES_NODE_PORT}")
    except BaseException:
        cluster.stop()
        postgres.stop_detached()
        raise
    if cluster.node is None:
        install_and_run(cluster)
    print(f"ready. kubectl --kubeconfig {cluster.kubeconfig} get nodes")
    print("deploy the assistant on it: make cluster-demo; stop it all: make cluster-down")
    return 0


def _write_info(
    cluster: KubeCluster, images: Mapping[str, BuiltImage], postgres: PostgresServer, host: str
) -> None:
    info = {
        "kubeconfig": str(cluster.kubeconfig),
        "images": {name: image.ref for name, image in sorted(images.items())},
        "postgres": {
            "host": host,
            "port": POSTGRES_NODE_PORT,
            "dbname": TOOLS_DATABASE,
            "user": postgres.user,
            "passwordFile": str(postgres.password_file),
        },
        "rasaPostgres": {
            "dbname": TOOLS_RASA_DATABASE,
            "user": TOOLS_RASA_DATABASE,
            "passwordFile": str(rasa_password_file()),
        },
    }
    local_cluster_info().write_text(json.dumps(info, indent=2) + "\n")


def cluster_down(args: argparse.Namespace) -> int:
    from assistente_testbed import gitops
    from assistente_testbed.operator_runner import stop as stop_operator

    if gitops.running():
        gitops.down()
    stop_operator()
    cluster = local_cluster()
    cluster.stop()
    if cluster_postgres().stop_detached():
        print("PostgreSQL stopped (its data stays in .local/cluster-postgres)")
    cluster.kubeconfig.unlink(missing_ok=True)
    local_cluster_info().unlink(missing_ok=True)
    print(f"cluster '{cluster.name}' stopped")
    return 0


def cluster_demo(args: argparse.Namespace) -> int:
    """The assistant deployed by the operator on the real node, until Ctrl-C."""
    from assistente_testbed.images import APP_IMAGES, ensure_images
    from assistente_testbed.local_assistant import LocalAssistant

    cluster = local_cluster()
    if not _running(cluster) or cluster.node is None or not local_cluster_info().exists():
        print("no local cluster with a real node: start it with make cluster", file=sys.stderr)
        return 1
    postgres = cluster_postgres().attach()
    # Images changed since `make cluster` (code edited since) are built and added now.
    images = ensure_images(APP_IMAGES)
    cluster.load_images(images.values())
    assistant = LocalAssistant(cluster, namespace="assistente-digital", name="local")
    print("deploying the assistant (operator -> pods on the real node) ...", flush=True)
    try:
        # Again, in case `make pulumi-destroy` removed the one `make cluster` installed.
        assistant.install_operator(images)
        assistant.deploy(images, postgres)
        url = assistant.api_url()
        print(f"ready in {assistant.figures['custom_resource_to_ready_s']}s.")
        print(f"chat widget (the API Service, through kube-proxy): {url}/")
        print("Ctrl-C removes the assistant (the cluster stays up)")
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"removing the assistant (namespace {assistant.namespace}; the cluster stays up)")
        cluster.kubectl("delete", "namespace", assistant.namespace, "--wait=false", check=False)
    return 0


def cluster_status(args: argparse.Namespace) -> int:
    cluster = local_cluster()
    if not cluster.kubeconfig.exists():
        print("no local cluster (start one with: make cluster)")
        return 1
    result = cluster.kubectl("get", "nodes", check=False)
    print(result.stdout or result.stderr)
    return result.returncode


def _has_real_node(cluster: KubeCluster) -> bool:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return any(
        (n["metadata"].get("annotations") or {}).get("kwok.x-k8s.io/node") != "fake" for n in nodes
    )


def gitops_up(args: argparse.Namespace) -> int:
    from assistente_testbed import gitops

    cluster = local_cluster(real_node=False)
    if _running(cluster) and _has_real_node(cluster):
        # With a real node every pod lands there (kwok's nodes are tainted), and it cannot run
        # the upstream operators' images (nothing is pulled), so the sync waves would never pass.
        print(
            "error: make gitops-up runs on kwok nodes only; stop the cluster with a real node "
            "(make cluster-down), then run make gitops-up again",
            file=sys.stderr,
        )
        return 1
    args.no_real_node = True
    cluster_up(args)
    return gitops.up(cluster)


def gitops_down(args: argparse.Namespace) -> int:
    from assistente_testbed import gitops

    return gitops.down()


def gitops_serve(args: argparse.Namespace) -> int:
    from assistente_testbed import gitops

    return gitops.serve(local_cluster(real_node=False))


def up(args: argparse.Namespace) -> int:
    from assistente_testbed.stack import run_local_stack

    return run_local_stack(metrics=args.metrics, logs=args.logs)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="assistente-testbed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    cluster = commands.add_parser("cluster", help="the local Kubernetes control plane")
    cluster_commands = cluster.add_subparsers(dest="action", required=True)
    cluster_start = cluster_commands.add_parser("up", help="start it (idempotent)")
    cluster_start.add_argument("--nodes", type=int, default=3, help="simulated nodes (default 3)")
    cluster_start.add_argument(
        "--no-real-node", action="store_true", help="kwok nodes only, operator as a local process"
    )
    cluster_start.set_defaults(handler=cluster_up)
    cluster_commands.add_parser(
        "demo", help="deploy the assistant on the real node, until Ctrl-C"
    ).set_defaults(handler=cluster_demo)
    cluster_commands.add_parser("down", help="stop it").set_defaults(handler=cluster_down)
    cluster_commands.add_parser("status", help="show its nodes").set_defaults(
        handler=cluster_status
    )

    gitops = commands.add_parser("gitops", help="Argo CD syncing this checkout into the cluster")
    gitops_commands = gitops.add_subparsers(dest="action", required=True)
    gitops_start = gitops_commands.add_parser("up", help="start it (and the cluster; idempotent)")
    gitops_start.add_argument("--nodes", type=int, default=3, help="simulated nodes (default 3)")
    gitops_start.set_defaults(handler=gitops_up)
    gitops_commands.add_parser("down", help="stop it").set_defaults(handler=gitops_down)
    gitops_commands.add_parser("serve", help="run it in the foreground (used by up)").set_defaults(
        handler=gitops_serve
    )

    run = commands.add_parser("up", help="run the whole assistant locally")
    run.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="do not start Prometheus and Alertmanager beside the stack",
    )
    run.add_argument(
        "--logs",
        action="store_true",
        help="ship the logs to a local VictoriaLogs (builds it and the collector the first time)",
    )
    run.set_defaults(handler=up)

    args = parser.parse_args(argv)
    # Ctrl-C, and SIGTERM (`kill`, a supervisor) alike, stop a command cleanly: `cluster demo`
    # removes its assistant, a half-started cluster is torn down. SIGINT is set explicitly: a
    # shell starting us in the background would have it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        sys.exit(args.handler(args))
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
