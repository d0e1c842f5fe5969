"""`assistente-pulumi`: preview, up, refresh or destroy a stack through the Automation API.

    assistente-pulumi up --stack aws-tjxx-prod          # Pulumi.aws-tjxx-prod.yaml in pulumi/
    assistente-pulumi up --stack onprem --local-cluster  # the local test cluster (make cluster)

With --local-cluster the stack runs against `make cluster`: the operator and the assistant as
pods on its real node, from the images it holds, with the PostgreSQL it publishes to the pods
(all read from .local/local-cluster.json).

State goes to $PULUMI_BACKEND_URL when set (an S3/Azure Blob/GCS bucket for real courts),
else to .local/pulumi/ in the checkout; the passphrase comes from $PULUMI_CONFIG_PASSPHRASE or,
for the local cluster, from a random file next to the state.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from pulumi import automation as auto

from assistente_pulumi import automation

LOCAL_ROOT = automation.REPO / ".local" / "pulumi"


def _stack(args: argparse.Namespace, tools: automation.Tools) -> auto.Stack:
    if args.local_cluster:
        root = LOCAL_ROOT / args.stack
        info = Path(args.local_cluster_info)
        if info.exists():
            # A cluster with a real node: its images, and a PostgreSQL its pods reach.
            local = automation.LocalCluster.from_info(info, root)
        else:
            local = automation.LocalCluster(kubeconfig=Path(args.kubeconfig).resolve(), root=root)
        return local.stack(tools, args.stack)
    backend = automation.Backend.under(LOCAL_ROOT / args.stack)
    return automation.stack(args.stack, tools=tools, backend=backend, ambient=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="assistente-pulumi",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["preview", "up", "refresh", "destroy"])
    parser.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--local-cluster",
        action="store_true",
        help="run against the local test cluster with pulumi/local/<stack>.yaml",
    )
    parser.add_argument(
        "--kubeconfig",
        default=str(automation.REPO / ".local" / "kubeconfig"),
        help="kubeconfig of the local cluster (with --local-cluster and no --local-cluster-info)",
    )
    parser.add_argument(
        "--local-cluster-info",
        default=str(automation.REPO / ".local" / "local-cluster.json"),
        help="what `make cluster` wrote about its real node: kubeconfig, images, PostgreSQL "
        "(with --local-cluster; used when the file exists)",
    )
    args = parser.parse_args(argv)

    tools = automation.Tools.built()
    target = _stack(args, tools)
    started = time.monotonic()
    if args.command == "preview":
        result: object = target.preview(diff=True, on_output=print)
    elif args.command == "up":
        result = target.up(on_output=print)
    elif args.command == "refresh":
        result = target.refresh(on_output=print)
    else:
        result = target.destroy(on_output=print)
    summary = getattr(result, "summary", None)
    changes = getattr(summary, "resource_changes", None) or getattr(result, "change_summary", {})
    print(f"{args.command} {args.stack}: {changes} em {time.monotonic() - started:.0f}s")
