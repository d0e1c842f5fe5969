"""Every PromQL query the rules, dashboards and runbooks hold, and the metric names they read:
what the name checks (static and against a real scrape) compare with the catalogue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from assistente_monitoring import dashboards, rules
from assistente_monitoring.catalogue import load_catalogue, load_third_party
from assistente_monitoring.promql import ExprInfo, analyse

# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "6h",
    "$namespace": "tj",
    "$assistente": "tjxx",
}


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "rule AssistenteInboundBacklog", "dashboard overview: panel title"
    expr: str

    def analysed(self) -> ExprInfo:
        return analyse(self.expr)


def interpolate(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def rule_queries() -> list[Query]:
    return [Query(f"{r.kind} {r.name} ({r.file.name})", r.expr) for r in rules.load_rules()]


def dashboard_queries() -> list[Query]:
    queries: list[Query] = []
    for name, board in dashboards.render().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries.append(
                    Query(f"dashboard {name}: {panel['title']}", interpolate(target["expr"]))
                )
        for variable in board["templating"]["list"]:
            query = variable.get("query")
            if variable["type"] == "query" and isinstance(query, str):
                inner = re.fullmatch(r"label_values\((.*), *\w+\)", query)
                if inner is None:
                    raise ValueError(f"{name}: unexpected variable query {query}")
                queries.append(
                    Query(
                        f"dashboard {name}: variable {variable['name']}",
                        interpolate(inner.group(1)),
                    )
                )
    return queries


def runbook_queries(runbooks: Path) -> list[Query]:
    """The ```promql blocks of the runbook page."""
    text = runbooks.read_text()
    blocks = re.findall(r"```promql\n(.*?)```", text, flags=re.DOTALL)
    return [Query(f"runbook query {i + 1}", block.strip()) for i, block in enumerate(blocks)]


def all_queries(runbooks: Path) -> list[Query]:
    return rule_queries() + dashboard_queries() + runbook_queries(runbooks)


def own_names() -> set[str]:
    return set(load_catalogue().by_exposed_name())


def third_party_names() -> set[str]:
    return set(load_third_party().metrics)


def recorded_names() -> set[str]:
    return rules.recorded_names()


def queried_names(runbooks: Path) -> set[str]:
    """Every metric name any rule, dashboard or runbook reads (recording rules excluded)."""
    names: set[str] = set()
    for query in all_queries(runbooks):
        names |= query.analysed().metric_names
    return names - recorded_names()
