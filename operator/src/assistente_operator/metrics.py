"""The operator's Prometheus metrics (names as monitoring/.../catalogue/metrics.yaml decides).

The reconciler records each pass; ``serve`` exposes /metrics on its own port, next to kopf's
liveness endpoint. Which resource a pass was about is never a label (logs and Events say that).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics, start_http_server

from assistente_operator.kinds import CHILD_KINDS
from assistente_operator.models import Phase

disable_created_metrics()  # type: ignore[no-untyped-call]

RESULTS = ("success", "temporary_error", "permanent_error", "invalid_spec")
# Pending is only the phase before the first pass: the dashboards show the phases a pass sets.
PHASES = tuple(p.value for p in Phase if p is not Phase.PENDING)

RECONCILES = Counter(
    "assistente_operator_reconciles_total", "Reconcile passes by result", ["result"]
)
APPLIES = Counter(
    "assistente_operator_applies_total",
    "Server-side applies sent to the API server (no-ops the cache skips are not sent)",
)
RECONCILE_DURATION = Histogram(
    "assistente_operator_reconcile_duration_seconds",
    "Duration of one reconcile pass",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MANAGED_OBJECTS = Gauge(
    "assistente_operator_managed_objects", "Children the operator owns, by kind", ["kind"]
)
RESOURCES = Gauge(
    "assistente_operator_resources", "AssistenteDigital resources by status phase", ["phase"]
)

for _result in RESULTS:
    RECONCILES.labels(result=_result)
for _kind in {k.kind for k in CHILD_KINDS}:
    MANAGED_OBJECTS.labels(kind=_kind)
for _phase in PHASES:
    RESOURCES.labels(phase=_phase)


class Inventory:
    """What each resource's last pass left behind (its children by kind, its phase), summed
    into the gauges. Thread-safe enough: passes of one object are serialised, and the gauges
    are recomputed from the whole table after each change."""

    def __init__(self) -> None:
        self._children: dict[str, Tally[str]] = {}
        self._phases: dict[str, str] = {}

    def record(self, key: str, *, kinds: Iterable[str], phase: str) -> None:
        self._children[key] = Tally(kinds)
        self._phases[key] = phase
        self._publish()

    def set_phase(self, key: str, phase: str) -> None:
        self._phases[key] = phase
        self._publish()

    def forget(self, key: str) -> None:
        self._children.pop(key, None)
        self._phases.pop(key, None)
        self._publish()

    def _publish(self) -> None:
        totals: Tally[str] = Tally()
        for tally in list(self._children.values()):
            totals.update(tally)
        for kind in {k.kind for k in CHILD_KINDS} | set(totals):
            MANAGED_OBJECTS.labels(kind=kind).set(totals.get(kind, 0))
        phases = Tally(self._phases.values())
        for phase in PHASES:
            RESOURCES.labels(phase=phase).set(phases.get(phase, 0))


def serve(address: str) -> None:
    """Serve /metrics on ``host:port`` (a daemon thread); an empty address turns it off."""
    if not address:
        return
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")  # noqa: S104
