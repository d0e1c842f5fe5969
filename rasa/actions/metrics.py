"""Prometheus metrics of the action server, kept here and rendered in the text exposition format.

Names, labels and buckets follow monitoring/.../catalogue/metrics.yaml (component `actions`).
Rasa's venv is pinned by rasa/requirements.lock, whose hash also keys the cached venv and the
trained model; prometheus-client is not in it, and four metrics do not justify rebuilding both,
so counters and histograms are kept by this module. The action server serves them at /metrics
(rasa_sdk_plugins). Everything runs on the server's one event loop: no locking is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    pairs = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[name]) for name in self.labelnames)

    def header(self, exposed_name: str) -> list[str]:
        return [f"# HELP {exposed_name} {self.help}", f"# TYPE {exposed_name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError("a counter's name ends in _total")
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def touch(self, **labels: str) -> None:
        """Create the series at 0, so rate() sees its first increment."""
        self._values.setdefault(self._key(labels), 0.0)

    def render(self) -> list[str]:
        family = self.name.removesuffix("_total")
        lines = self.header(family)
        for key, value in sorted(self._values.items()):
            lines.append(f"{self.name}{_labels(self.labelnames, key)} {_number(value)}")
        return lines


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labelnames: Sequence[str], buckets: Iterable[float]
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = (*sorted(float(b) for b in buckets), math.inf)
        # per label set: cumulative-free counts per bucket, sum, count
        self._values: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def _state(self, key: LabelValues) -> tuple[list[int], list[float]]:
        return self._values.setdefault(key, ([0] * len(self.buckets), [0.0, 0.0]))

    def observe(self, value: float, **labels: str) -> None:
        counts, totals = self._state(self._key(labels))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                counts[index] += 1
                break
        totals[0] += value
        totals[1] += 1

    def touch(self, **labels: str) -> None:
        self._state(self._key(labels))

    def render(self) -> list[str]:
        lines = self.header(self.name)
        for key, (counts, (total, count)) in sorted(self._values.items()):
            cumulative = 0
            for bound, bucket_count in zip(self.buckets, counts, strict=True):
                cumulative += bucket_count
                le = f'le="{_number(bound)}"'
                lines.append(
                    f"{self.name}_bucket{_labels(self.labelnames, key, le)} {_number(cumulative)}"
                )
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {_number(count)}")
        return lines


# The agent behind each custom action: the four specialised agents of the knowledge base get
# their own name, so calls per agent show what citizens ask for.
AGENT_OF_ACTION = {
    "action_consultar_processo": "processo",
    "action_base_conhecimento": "conhecimento",
    "action_peticionamento": "conhecimento",
    "action_suporte_tecnico": "suporte_tecnico",
    "action_servicos_portal": "servicos_portal",
    "action_orientacao_processual": "orientacao_processual",
    "action_escalar_atendimento": "escalonamento",
    "action_responder_confirmacao": "confirmacao",
}
AGENTS = tuple(sorted(set(AGENT_OF_ACTION.values())))
DATAJUD_OUTCOMES = ("ok", "not_found", "error", "timeout")

AGENT_CALLS = Counter(
    "assistente_agent_calls_total", "Custom action runs by agent", ("agent", "outcome")
)
AGENT_DURATION = Histogram(
    "assistente_agent_duration_seconds",
    "Time a custom action took, by agent",
    ("agent",),
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DATAJUD_REQUEST_DURATION = Histogram(
    "assistente_datajud_request_duration_seconds",
    "Calls to DataJud's public API, by outcome",
    ("outcome",),
    (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
KNOWLEDGE_LOOKUPS = Counter(
    "assistente_knowledge_lookups_total",
    "Knowledge-base searches; miss when no passage reached the minimum score",
    ("result",),
)
REGISTRY: tuple[Counter | Histogram, ...] = (
    AGENT_CALLS,
    AGENT_DURATION,
    DATAJUD_REQUEST_DURATION,
    KNOWLEDGE_LOOKUPS,
)

for _agent in AGENTS:
    AGENT_DURATION.touch(agent=_agent)
    for _outcome in ("ok", "error"):
        AGENT_CALLS.touch(agent=_agent, outcome=_outcome)
for _outcome in DATAJUD_OUTCOMES:
    DATAJUD_REQUEST_DURATION.touch(outcome=_outcome)
for _result in ("hit", "miss"):
    KNOWLEDGE_LOOKUPS.touch(result=_result)


def render() -> str:
    """Every metric in the Prometheus text exposition format (version 0.0.4)."""
    return "\n".join(line for metric in REGISTRY for line in metric.render()) + "\n"
