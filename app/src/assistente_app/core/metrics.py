"""Prometheus metrics shared by the API and the worker (module-level objects, no I/O)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUEST_LATENCY = Histogram(
    "assistente_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MESSAGES = Counter(
    "assistente_messages_total", "Messages by channel and direction", ["channel", "direction"]
)
ESCALATIONS = Counter("assistente_escalations_total", "Escalations to level 2 by team", ["team"])
QUEUE_FULL = Counter(
    "assistente_escalations_refused_total", "Escalations refused by a full team queue", ["team"]
)
LEVEL2_CLOSED = Counter(
    "assistente_level2_closed_total",
    "Level-2 conversations closed, by resolution code",
    ["team", "code"],
)
QUEUE_DEPTH = Gauge("assistente_queue_depth", "Entries waiting or pending in a stream", ["stream"])
DEAD_LETTERS = Counter("assistente_dead_letters_total", "Entries moved to a dead-letter stream")
WORKER_RESULTS = Counter(
    "assistente_worker_results_total", "Worker outcomes", ["stream", "outcome"]
)
RASA_LATENCY = Histogram("assistente_rasa_request_duration_seconds", "Rasa REST webhook latency")
WEBSOCKETS = Gauge("assistente_websockets_open", "Open WebSocket connections in this process")
