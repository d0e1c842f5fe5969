"""``assistente-operator``: run the operator, render children offline, print the CRD."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from assistente_operator import API_VERSION, KIND, __version__
from assistente_operator.builders import plan
from assistente_operator.crd import build_crd
from assistente_operator.models import AssistenteDigital


def dump_all(documents: Iterable[dict[str, Any]], stream: TextIO) -> None:
    yaml.safe_dump_all(list(documents), stream, sort_keys=False, allow_unicode=True)


def _load_resources(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    found = [d for d in docs if d.get("apiVersion") == API_VERSION and d.get("kind") == KIND]
    if not found:
        raise SystemExit(f"erro: nenhum {KIND} ({API_VERSION}) encontrado em {path}")
    return found


def cmd_render(args: argparse.Namespace) -> int:
    documents: list[dict[str, Any]] = []
    for body in _load_resources(args.file):
        body.setdefault("metadata", {}).setdefault("namespace", args.namespace)
        try:
            cr = AssistenteDigital.from_body(body)
        except ValidationError as error:
            name = body.get("metadata", {}).get("name", "?")
            print(f"erro: {KIND} {name} é inválido:", file=sys.stderr)
            for problem in error.errors():
                location = ".".join(str(part) for part in problem["loc"])
                print(f"  {location}: {problem['msg']}", file=sys.stderr)
            return 2
        documents.extend(plan(cr).objects)
    dump_all(documents, sys.stdout)
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    dump_all([build_crd()], sys.stdout)
    return 0


def _quiet_child_events(record: logging.LogRecord) -> bool:
    """Drops kopf's per-event success lines for children (one per watch event: pure noise)."""
    return not (record.levelno <= logging.INFO and str(record.msg).startswith("Handler 'child-"))


def cmd_run(args: argparse.Namespace) -> int:
    # Imported here: rendering and printing the CRD must not need kopf's machinery.
    import kopf

    from assistente_operator import handlers  # noqa: F401 - registers the handlers
    from assistente_operator.settings import OperatorConfig

    config = OperatorConfig.from_env(
        namespaces=tuple(args.namespace) if args.namespace else None,
        resync_seconds=args.resync_seconds,
        workers=args.workers,
        kubeconfig=args.kubeconfig,
        liveness=args.liveness,
    )
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    if not args.verbose:
        logging.getLogger("kopf.objects").addFilter(_quiet_child_events)
    kopf.run(
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=config.liveness or None,
        memo=kopf.Memo(config=config),
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="assistente-operator",
        description="Operador Kubernetes do Assistente Digital (recurso AssistenteDigital).",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="executa o operador contra o cluster do kubeconfig")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="namespace (ou padrão glob) a observar; repita para vários; omitido = cluster todo",
    )
    run.add_argument(
        "--resync-seconds", type=float, default=None, help="intervalo da ressincronização"
    )
    run.add_argument("--workers", type=int, default=None, help="reconciliações simultâneas")
    run.add_argument("--kubeconfig", default=None, help="arquivo kubeconfig (padrão: $KUBECONFIG)")
    run.add_argument(
        "--liveness", default=None, help="endpoint de liveness, ex. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--log-format", choices=("plain", "json"), default="plain")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)

    render = commands.add_parser("render", help="imprime os objetos filhos de um CR (sem cluster)")
    render.add_argument("file", help="arquivo YAML com um ou mais AssistenteDigital ('-' = stdin)")
    render.add_argument("--namespace", default="default", help="namespace se o CR não definir")
    render.set_defaults(func=cmd_render)

    crd = commands.add_parser("crd", help="imprime o CustomResourceDefinition")
    crd.set_defaults(func=cmd_crd)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # `assistente-operator render ... | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
