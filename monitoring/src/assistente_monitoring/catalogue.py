"""The metric catalogue: our own metrics (catalogue/metrics.yaml) and the third-party metrics we
query (catalogue/third_party.yaml), loaded into typed records."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, cast

import yaml

from assistente_monitoring import CATALOGUE_DIR

MetricType = Literal["counter", "gauge", "histogram"]
_TYPES: tuple[MetricType, ...] = ("counter", "gauge", "histogram")


class CatalogueError(ValueError):
    """The catalogue file itself is malformed."""


@dataclass(frozen=True)
class Metric:
    name: str
    type: MetricType
    component: str
    help: str
    # label -> its closed set of values, or None when the values are open but bounded
    labels: dict[str, tuple[str, ...] | None]
    buckets: tuple[float, ...] | None

    def exposed_names(self) -> frozenset[str]:
        """The sample names a scrape shows for this metric."""
        if self.type == "histogram":
            return frozenset(f"{self.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
        return frozenset({self.name})


@dataclass(frozen=True)
class Catalogue:
    metrics: dict[str, Metric]
    label_values: dict[str, tuple[str, ...] | None]
    target_labels: frozenset[str]
    forbidden_labels: frozenset[str]

    def by_exposed_name(self) -> dict[str, Metric]:
        return {exposed: m for m in self.metrics.values() for exposed in m.exposed_names()}

    def allowed_values(self, metric: Metric, label: str) -> tuple[str, ...] | None:
        own = metric.labels.get(label)
        return own if own is not None else self.label_values.get(label)


@dataclass(frozen=True)
class ThirdPartyMetric:
    name: str
    source: str
    help: str


@dataclass(frozen=True)
class ThirdParty:
    metrics: dict[str, ThirdPartyMetric]
    sources: dict[str, dict[str, Any]]

    def names_from(self, source: str) -> frozenset[str]:
        return frozenset(m.name for m in self.metrics.values() if m.source == source)


def _read(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CATALOGUE_DIR / name).read_text())
    if not isinstance(data, dict):
        raise CatalogueError(f"{name}: expected a mapping at the top")
    return cast(dict[str, Any], data)


def _values(raw: object, where: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return tuple(raw)
    raise CatalogueError(f"{where}: label values must be a list of strings or null")


@cache
def load_catalogue() -> Catalogue:
    data = _read("metrics.yaml")
    label_values = {
        name: _values(doc.get("values"), f"labels.{name}") for name, doc in data["labels"].items()
    }
    metrics: dict[str, Metric] = {}
    for raw in data["metrics"]:
        name = raw["name"]
        if raw["type"] not in _TYPES:
            raise CatalogueError(f"{name}: unknown type {raw['type']!r}")
        if name in metrics:
            raise CatalogueError(f"{name}: listed twice")
        labels = {
            label: _values(values, f"{name}.labels.{label}")
            for label, values in (raw.get("labels") or {}).items()
        }
        buckets = raw.get("buckets")
        metrics[name] = Metric(
            name=name,
            type=raw["type"],
            component=raw["component"],
            help=raw["help"],
            labels=labels,
            buckets=tuple(float(b) for b in buckets) if buckets is not None else None,
        )
    return Catalogue(
        metrics=metrics,
        label_values=label_values,
        target_labels=frozenset(data["target_labels"]),
        forbidden_labels=frozenset(data["forbidden_labels"]),
    )


@cache
def load_third_party() -> ThirdParty:
    data = _read("third_party.yaml")
    sources: dict[str, dict[str, Any]] = data["sources"]
    metrics: dict[str, ThirdPartyMetric] = {}
    for name, raw in data["metrics"].items():
        if raw["source"] not in sources:
            raise CatalogueError(f"{name}: unknown source {raw['source']!r}")
        metrics[name] = ThirdPartyMetric(name=name, source=raw["source"], help=raw["help"])
    return ThirdParty(metrics=metrics, sources=sources)
