"""`assistente-monitoring`: write the dashboards and print where the rule files are.

assistente-monitoring dashboards --out DIR        one Grafana JSON file per dashboard
assistente-monitoring configmap --namespace NS    the dashboards as a sidecar ConfigMap (YAML)
assistente-monitoring rules                       the rule files' paths (for promtool)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from assistente_monitoring import dashboards, rules


def _dashboards(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, board in dashboards.render(args.name or None).items():
        path = out / f"{name}.json"
        path.write_text(json.dumps(board, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        print(path)
    return 0


def _configmap(args: argparse.Namespace) -> int:
    manifest = dashboards.configmap(
        args.name_prefix, args.namespace, dashboards.render(args.name or None)
    )
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    return 0


def _rules(args: argparse.Namespace) -> int:
    for path in rules.rule_files():
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="assistente-monitoring",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    choices = sorted(dashboards.DASHBOARDS)

    write = commands.add_parser("dashboards", help="write the dashboards as Grafana JSON files")
    write.add_argument("--out", type=Path, required=True, help="directory to write into")
    write.add_argument("name", nargs="*", choices=[*choices, []], help="default: all")
    write.set_defaults(handler=_dashboards)

    configmap = commands.add_parser("configmap", help="print the dashboards as a ConfigMap")
    configmap.add_argument("--namespace", required=True)
    configmap.add_argument(
        "--name-prefix", default="assistente-dashboards", help="the ConfigMap's name"
    )
    configmap.add_argument("name", nargs="*", choices=[*choices, []], help="default: all")
    configmap.set_defaults(handler=_configmap)

    commands.add_parser("rules", help="print the rule files' paths").set_defaults(handler=_rules)

    args = parser.parse_args(argv)
    sys.exit(args.handler(args))
