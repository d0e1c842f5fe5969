"""The API's and the worker's metrics: the same names, types, labels and buckets as the
catalogue (monitoring/.../catalogue/metrics.yaml), and each one moves when what it counts
happens."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from assistente_app.channels.registry import CHANNELS
from assistente_app.conversations import models as m
from assistente_app.core import metrics
from assistente_app.worker.runner import sample_level2, sample_queues
from assistente_contract import TEAMS
from assistente_monitoring.catalogue import Metric, load_catalogue
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from sqlalchemy import update

from .conftest import Harness, SettingsFactory, running_app

OWN = {
    name: metric
    for name, metric in load_catalogue().metrics.items()
    if metric.component in ("api", "worker")
}


def _registered() -> dict[str, MetricWrapperBase]:
    collectors = vars(metrics).values()
    return {
        c._name + ("_total" if c._type == "counter" else ""): c
        for c in collectors
        if isinstance(c, MetricWrapperBase)
    }


def value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_the_app_registers_exactly_the_catalogued_metrics() -> None:
    assert set(_registered()) == set(OWN)


@pytest.mark.parametrize("name", sorted(OWN))
def test_type_labels_and_buckets_match_the_catalogue(name: str) -> None:
    metric: Metric = OWN[name]
    collector = _registered()[name]
    assert collector._type == metric.type
    assert set(collector._labelnames) == set(metric.labels)
    if metric.buckets is not None:
        bounds = [b for b in collector._upper_bounds if b != float("inf")]  # type: ignore[attr-defined]
        assert bounds == list(metric.buckets)


def test_channel_and_team_values_are_the_registry_and_the_contract() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.label_values["channel"] or ()) == {c.name for c in CHANNELS}
    assert set(catalogue.label_values["team"] or ()) == set(TEAMS)


def test_every_closed_label_set_is_created_at_start(harness: Harness) -> None:
    metrics.initialise_worker(channels=[c.name for c in CHANNELS], teams=TEAMS, partitions=1)
    exposed = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in REGISTRY.collect()
        for sample in family.samples
    }
    for channel in (c.name for c in CHANNELS):
        assert ("assistente_messages_accepted_total", (("channel", channel),)) in exposed
        for outcome in metrics.TURN_OUTCOMES:
            labels = (("channel", channel), ("outcome", outcome))
            assert ("assistente_turns_total", labels) in exposed


async def test_accepted_and_rejected_messages_are_counted_by_channel_and_reason(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async with running_app(make_settings(queue_max_length=1), oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        accepted = value("assistente_messages_accepted_total", channel="web")
        full = value("assistente_messages_rejected_total", channel="web", reason="queue_full")
        invalid = value("assistente_messages_rejected_total", channel="web", reason="invalid")
        unauthorized = value(
            "assistente_messages_rejected_total", channel="web", reason="unauthorized"
        )

        assert (await h.post_message(conversation_id, token, "olá")).status_code == 202
        assert (await h.post_message(conversation_id, token, "de novo")).status_code == 503
        assert (await h.post_message(conversation_id, token, "")).status_code == 422
        assert (await h.post_message(conversation_id, "token-errado", "oi")).status_code == 403

        assert value("assistente_messages_accepted_total", channel="web") == accepted + 1
        assert (
            value("assistente_messages_rejected_total", channel="web", reason="queue_full")
            == full + 1
        )
        assert (
            value("assistente_messages_rejected_total", channel="web", reason="invalid")
            == invalid + 1
        )
        assert (
            value("assistente_messages_rejected_total", channel="web", reason="unauthorized")
            == unauthorized + 1
        )
        route = "/api/v1/conversations/{conversation_id}/messages"
        assert (
            value(
                "assistente_http_request_duration_seconds_count",
                method="POST",
                route=route,
                status="202",
            )
            >= 1
        )
        assert value("assistente_queue_max_length") == 1


async def test_a_bot_turn_is_counted_with_its_latency_and_delivery(harness: Harness) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    sent = await harness.post_message(conversation_id, token, "olá")
    replied = value("assistente_turns_total", channel="web", outcome="replied")
    timed = value("assistente_turn_duration_seconds_count", channel="web")
    delivered = value("assistente_deliveries_total", channel="web", outcome="sent")

    await harness.bot_reply(sent.json()["id"], "Olá! Como posso ajudar?")
    await harness.deliver_outbound()

    assert value("assistente_turns_total", channel="web", outcome="replied") == replied + 1
    assert value("assistente_turn_duration_seconds_count", channel="web") == timed + 1
    assert value("assistente_deliveries_total", channel="web", outcome="sent") == delivered + 1


async def test_stream_gauges_show_the_backlog_and_its_oldest_entry(harness: Harness) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    await harness.post_message(conversation_id, token, "olá")
    queue = harness.worker.queues.inbound_for(conversation_id)
    await sample_queues(harness.worker)
    labels = {"stream": "inbound", "partition": queue.partition}
    assert value("assistente_stream_length", **labels) == 1
    assert value("assistente_stream_lag", **labels) == 1
    assert value("assistente_stream_pending", **labels) == 0
    assert 0 <= value("assistente_stream_oldest_age_seconds", **labels) < 60


async def test_level2_gauges_show_the_queue_and_the_head_of_the_line_wait(
    harness: Harness,
) -> None:
    conversation_id, _, _ = await harness.open_conversation()
    queued_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    async with harness.worker.db.write_sessions() as session:
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == uuid.UUID(conversation_id))
            .values(status=m.QUEUED, team="servicos_portal", queued_at=queued_at)
        )
        await session.commit()
    await sample_level2(harness.worker)
    assert value("assistente_escalation_queue_length", team="servicos_portal") >= 1
    assert value("assistente_escalation_oldest_wait_seconds", team="servicos_portal") >= 600
