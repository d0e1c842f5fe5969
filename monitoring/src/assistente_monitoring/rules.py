"""The plain Prometheus rule files (rules/*.rules.yml), read as data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from assistente_monitoring import ANY_ASSISTANT_MATCHER, RULES_DIR

# Rules evaluated once per assistant (the operator renders them per AssistenteDigital resource).
ASSISTANT_RULES = RULES_DIR / "assistente.rules.yml"
# Rules about the operator itself (one per cluster, shipped with the operator's install base).
OPERATOR_RULES = RULES_DIR / "operator.rules.yml"


@dataclass(frozen=True)
class Rule:
    file: Path
    group: str
    kind: str  # "alert" or "record"
    name: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]
    duration: str | None


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.rules.yml"))


def load_groups(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    return cast(list[dict[str, Any]], data["groups"])


def load_rules(paths: list[Path] | None = None) -> list[Rule]:
    rules: list[Rule] = []
    for path in paths if paths is not None else rule_files():
        for group in load_groups(path):
            for raw in group["rules"]:
                kind = "alert" if "alert" in raw else "record"
                rules.append(
                    Rule(
                        file=path,
                        group=group["name"],
                        kind=kind,
                        name=raw[kind],
                        expr=raw["expr"],
                        labels=dict(raw.get("labels") or {}),
                        annotations=dict(raw.get("annotations") or {}),
                        duration=raw.get("for"),
                    )
                )
    return rules


def alert_names(paths: list[Path] | None = None) -> set[str]:
    return {r.name for r in load_rules(paths) if r.kind == "alert"}


def recorded_names(paths: list[Path] | None = None) -> set[str]:
    return {r.name for r in load_rules(paths) if r.kind == "record"}


def scope_expr(expr: str, namespace: str, assistant: str) -> str:
    """Narrow an expression of assistente.rules.yml from any assistant to one resource."""
    if ANY_ASSISTANT_MATCHER not in expr:
        raise ValueError(f"expression has no {ANY_ASSISTANT_MATCHER} matcher to narrow: {expr}")
    return expr.replace(ANY_ASSISTANT_MATCHER, f'namespace="{namespace}", assistente="{assistant}"')


def prometheus_rule(
    name: str, path: Path, *, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A rule file as a Prometheus Operator PrometheusRule (the groups unchanged)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"groups": load_groups(path)},
    }
