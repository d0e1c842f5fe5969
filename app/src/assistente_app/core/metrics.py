"""Prometheus metrics of the API and the worker (module-level objects, no I/O).

Names, types, labels and buckets follow monitoring/.../catalogue/metrics.yaml, where they are
decided (a test compares this registry with it). Labels have small, closed value sets; who or
which conversation is never a label (that is what the logs are for). The scrape adds
``namespace``, ``assistente``, ``component`` and ``pod``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The `_created` series double the series count and no rule or dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

STREAMS = ("inbound", "outbound")
REJECTION_REASONS = (
    "queue_full",
    "server_error",
    "rate_limited",
    "invalid",
    "unauthorized",
    "too_large",
    "not_configured",
)
TURN_OUTCOMES = ("replied", "escalated", "human", "failed")
RASA_OUTCOMES = ("ok", "unavailable", "error")
RETRY_REASONS = ("transient", "error")
DELIVERY_OUTCOMES = ("sent", "failed")
REFUSAL_REASONS = ("queue_full", "service_closed")
ABANDONMENT_REASONS = ("left", "expired", "erased")

# The channel of the citizen message a request carries, once known (the web contract serves
# the widget and the mobile app alike): rejections are counted under it.
message_channel: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "message_channel", default=None
)

# ---- API ---------------------------------------------------------------------------------
HTTP_REQUEST_DURATION = Histogram(
    "assistente_http_request_duration_seconds",
    "HTTP request latency by route template (health, readiness and metrics excluded)",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MESSAGES_ACCEPTED = Counter(
    "assistente_messages_accepted_total",
    "Citizen messages stored and queued (redeliveries not counted again)",
    ["channel"],
)
MESSAGES_REJECTED = Counter(
    "assistente_messages_rejected_total",
    "Citizen messages refused before they were stored, by reason",
    ["channel", "reason"],
)
WEBSOCKETS_OPEN = Gauge(
    "assistente_websockets_open",
    "WebSocket connections open in this process (citizens' widgets and clerks' consoles)",
)
QUEUE_MAX_LENGTH = Gauge(
    "assistente_queue_max_length", "Backpressure threshold of each inbound stream partition"
)
ESCALATION_CLAIMS = Counter(
    "assistente_escalation_claims_total", "Queued conversations a clerk claimed", ["team"]
)
ESCALATION_WAIT = Histogram(
    "assistente_escalation_wait_seconds",
    "Wait in the level-2 queue before a clerk claimed the conversation",
    ["team"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
)
ESCALATION_CLOSURES = Counter(
    "assistente_escalation_closures_total",
    "Level-2 conversations a clerk closed, by resolution code",
    ["team", "code"],
)

# ---- worker --------------------------------------------------------------------------------
TURNS = Counter(
    "assistente_turns_total",
    "Citizen messages finished, by outcome (by the API when stored for a clerk)",
    ["channel", "outcome"],
)
TURN_DURATION = Histogram(
    "assistente_turn_duration_seconds",
    "From the message being accepted to the bot's reply being stored",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300),
)
RASA_REQUEST_DURATION = Histogram(
    "assistente_rasa_request_duration_seconds",
    "Calls to Rasa's REST webhook, by outcome",
    ["outcome"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WORKER_RETRIES = Counter(
    "assistente_worker_retries_total",
    "Stream entries handed back for another try",
    ["stream", "reason"],
)
DEAD_LETTERS = Counter(
    "assistente_dead_letters_total", "Stream entries moved to the dead-letter stream", ["stream"]
)
DELIVERIES = Counter(
    "assistente_deliveries_total", "Replies pushed to the citizen's channel", ["channel", "outcome"]
)
STREAM_LENGTH = Gauge(
    "assistente_stream_length", "Entries in the stream (the backlog)", ["stream", "partition"]
)
STREAM_PENDING = Gauge(
    "assistente_stream_pending",
    "Entries delivered and not yet acknowledged",
    ["stream", "partition"],
)
STREAM_LAG = Gauge(
    "assistente_stream_lag", "Entries no consumer has read yet", ["stream", "partition"]
)
STREAM_OLDEST_AGE = Gauge(
    "assistente_stream_oldest_age_seconds",
    "Age of the oldest entry in the stream (0 when empty)",
    ["stream", "partition"],
)
STREAM_DEAD_LETTERS = Gauge(
    "assistente_stream_dead_letters",
    "Entries waiting in the dead-letter stream",
    ["stream", "partition"],
)

# ---- level 2 ------------------------------------------------------------------------------
ESCALATIONS = Counter(
    "assistente_escalations_total", "Conversations put in a level-2 queue", ["team"]
)
ESCALATIONS_REFUSED = Counter(
    "assistente_escalations_refused_total",
    "Escalations that found no queue: the team's queue was full, or level 2 was closed",
    ["team", "reason"],
)
ESCALATION_ABANDONMENTS = Counter(
    "assistente_escalation_abandonments_total",
    "Queued conversations that ended before a clerk claimed them, by why",
    ["team", "reason"],
)
ESCALATION_QUEUE_LENGTH = Gauge(
    "assistente_escalation_queue_length", "Conversations waiting in the level-2 queue", ["team"]
)
ESCALATION_OLDEST_WAIT = Gauge(
    "assistente_escalation_oldest_wait_seconds",
    "Wait of the conversation at the head of the queue (0 when empty)",
    ["team"],
)
ESCALATION_IN_PROGRESS = Gauge(
    "assistente_escalation_in_progress", "Conversations a clerk has claimed", ["team"]
)
ESCALATION_MAX_WAIT = Gauge(
    "assistente_escalation_max_wait_seconds", "The resource's limit on a citizen's wait for a clerk"
)


def rejection_reason(status: int, error_code: str | None) -> str:
    """Why a request carrying a citizen message was refused, from its answer."""
    if error_code == "queue_full":
        return "queue_full"
    if status >= 500:
        return "server_error"
    by_status = {
        429: "rate_limited",
        401: "unauthorized",
        403: "unauthorized",
        413: "too_large",
        404: "not_configured",
    }
    return by_status.get(status, "invalid")


def initialise_api(
    *, channels: Iterable[str], teams: Iterable[str], resolution_codes: Iterable[str]
) -> None:
    """Create every label combination at 0, so rate() sees the first event."""
    for channel in channels:
        MESSAGES_ACCEPTED.labels(channel=channel)
        TURNS.labels(channel=channel, outcome="human")  # messages for the clerk, stored here
        for reason in REJECTION_REASONS:
            MESSAGES_REJECTED.labels(channel=channel, reason=reason)
    codes = tuple(resolution_codes)
    for team in teams:
        ESCALATION_CLAIMS.labels(team=team)
        ESCALATION_WAIT.labels(team=team)
        for code in codes:
            ESCALATION_CLOSURES.labels(team=team, code=code)
        # Citizens leave the queue through the API.
        ESCALATION_ABANDONMENTS.labels(team=team, reason="left")


def initialise_worker(*, channels: Iterable[str], teams: Iterable[str], partitions: int) -> None:
    """Create every label combination at 0, so rate() sees the first event."""
    for channel in channels:
        TURN_DURATION.labels(channel=channel)
        for outcome in TURN_OUTCOMES:
            TURNS.labels(channel=channel, outcome=outcome)
        for outcome in DELIVERY_OUTCOMES:
            DELIVERIES.labels(channel=channel, outcome=outcome)
    for rasa_outcome in RASA_OUTCOMES:
        RASA_REQUEST_DURATION.labels(outcome=rasa_outcome)
    for stream in STREAMS:
        DEAD_LETTERS.labels(stream=stream)
        for reason in RETRY_REASONS:
            WORKER_RETRIES.labels(stream=stream, reason=reason)
        for partition in range(partitions):
            for gauge in (
                STREAM_LENGTH,
                STREAM_PENDING,
                STREAM_LAG,
                STREAM_OLDEST_AGE,
                STREAM_DEAD_LETTERS,
            ):
                gauge.labels(stream=stream, partition=str(partition))
    for team in teams:
        ESCALATIONS.labels(team=team)
        for refusal in REFUSAL_REASONS:
            ESCALATIONS_REFUSED.labels(team=team, reason=refusal)
        for abandonment in ABANDONMENT_REASONS:
            ESCALATION_ABANDONMENTS.labels(team=team, reason=abandonment)
        for level2 in (ESCALATION_QUEUE_LENGTH, ESCALATION_OLDEST_WAIT, ESCALATION_IN_PROGRESS):
            level2.labels(team=team)
