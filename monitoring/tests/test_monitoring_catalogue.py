"""One truth for names, statically: the catalogue follows Prometheus naming, every name a rule,
dashboard or runbook reads is in the catalogue or the checked third-party list, and every label
they filter or group on exists on that metric with a value it can take."""

from __future__ import annotations

import re

import pytest
from assistente_monitoring import queries
from assistente_monitoring.catalogue import Metric, load_catalogue, load_third_party
from assistente_testbed.paths import repo_root

RUNBOOKS = repo_root() / "docs" / "runbooks.md"
BASE_UNITS = ("_seconds", "_bytes")


@pytest.mark.parametrize("metric", load_catalogue().metrics.values(), ids=lambda m: m.name)
def test_the_name_follows_prometheus_conventions(metric: Metric) -> None:
    assert re.fullmatch(r"assistente_[a-z0-9_]+", metric.name)
    if metric.type == "counter":
        assert metric.name.endswith("_total")
    else:
        assert not metric.name.endswith("_total")
    if metric.type == "histogram":
        assert metric.name.endswith(BASE_UNITS), "a histogram's name carries its base unit"
        assert metric.buckets
        assert list(metric.buckets) == sorted(metric.buckets)
    else:
        assert metric.buckets is None
    for unit in ("_milliseconds", "_ms", "_minutes", "_hours", "_kb", "_mb"):
        assert unit not in metric.name, "use base units (seconds, bytes)"
    assert metric.help.strip()


def test_no_metric_carries_a_personal_or_unbounded_label() -> None:
    catalogue = load_catalogue()
    for metric in catalogue.metrics.values():
        assert not set(metric.labels) & catalogue.forbidden_labels, metric.name
        assert not set(metric.labels) & catalogue.target_labels, (
            f"{metric.name}: {set(metric.labels) & catalogue.target_labels} is added by the "
            "scrape, not by the code"
        )
        for label in metric.labels:
            assert label in catalogue.label_values or metric.labels[label] is not None, (
                f"{metric.name}.{label}: document the label under `labels:` or list its values"
            )


def test_every_name_queried_is_catalogued_or_a_checked_third_party_metric() -> None:
    known = queries.own_names() | queries.third_party_names()
    unknown: dict[str, list[str]] = {}
    for query in queries.all_queries(RUNBOOKS):
        for name in query.analysed().metric_names - known - queries.recorded_names():
            unknown.setdefault(name, []).append(query.where)
    assert unknown == {}


def test_every_catalogued_and_third_party_metric_is_queried_somewhere() -> None:
    """A name nobody reads is either dead or a panel someone forgot."""
    queried = queries.queried_names(RUNBOOKS)
    unread = {
        metric.name
        for metric in load_catalogue().metrics.values()
        if not metric.exposed_names() & queried
    } | (set(load_third_party().metrics) - queried)
    assert unread == set()


def test_every_label_used_exists_on_the_metric_with_a_possible_value() -> None:
    catalogue = load_catalogue()
    by_name = catalogue.by_exposed_name()
    problems: list[str] = []
    for query in queries.all_queries(RUNBOOKS):
        for selector in query.analysed().selectors:
            metric = by_name.get(selector.name or "")
            if metric is None:
                continue
            allowed = set(metric.labels) | catalogue.target_labels
            if selector.name == f"{metric.name}_bucket":
                allowed.add("le")
            for label, op, value in selector.matchers:
                if label not in allowed:
                    problems.append(f"{query.where}: {metric.name} has no label {label}")
                    continue
                values = catalogue.allowed_values(metric, label)
                if values is None or label in catalogue.target_labels:
                    continue
                if op == "=" and value not in values:
                    problems.append(f"{query.where}: {metric.name}{{{label}}} is never {value!r}")
                if op == "=~" and not any(re.fullmatch(value, v) for v in values):
                    problems.append(
                        f"{query.where}: {metric.name}{{{label}=~{value!r}}} matches nothing"
                    )
    assert problems == []


def test_histogram_thresholds_in_queries_are_real_bucket_bounds() -> None:
    by_name = load_catalogue().by_exposed_name()
    for query in queries.all_queries(RUNBOOKS):
        for selector in query.analysed().selectors:
            le = selector.matcher("le")
            if le is None:
                continue
            metric = by_name[selector.name or ""]
            assert metric.buckets is not None
            # prometheus_client writes bucket bounds as Python floats ("5.0").
            assert le[1] in {str(float(b)) for b in metric.buckets}, (query.where, le)


def test_queries_never_group_by_a_personal_identifier() -> None:
    forbidden = load_catalogue().forbidden_labels
    for query in queries.all_queries(RUNBOOKS):
        assert not query.analysed().grouping_labels & forbidden, query.where
