"""The worker process: stream consumers, the sweeper, the level-2 wait limit and the retention
job."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

from assistente_contract import TEAMS, as_team
from prometheus_client import start_http_server
from sqlalchemy import func, select

from assistente_app.channels.registry import CHANNELS, enabled_channels
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.core import metrics
from assistente_app.escalation import notify
from assistente_app.escalation import service as escalation_service
from assistente_app.escalation.catalog import EXPIRED
from assistente_app.lgpd import service as lgpd_service
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.queue.streams import QueueFullError
from assistente_app.runtime import build_resources, close_resources
from assistente_app.settings import Settings
from assistente_app.worker.handlers import (
    REPLY_ROLES,
    WorkerContext,
    handle_inbound,
    handle_outbound,
    on_inbound_dead_letter,
    on_outbound_dead_letter,
)
from assistente_app.worker.rasa import RasaClient

log = logging.getLogger(__name__)
# How often the stream and level-2 gauges are read (the backlog alert's threshold is 60 s).
METRICS_SAMPLE_S = 5.0

# How often queued conversations are checked against maxWaitMinutes.
EXPIRE_EVERY_S = 30.0
SWEEP_BATCH = 500


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def build_context(settings: Settings) -> WorkerContext:
    resources = build_resources(settings)
    resources.enabled_channels = enabled_channels(settings)
    http = resources.http
    return WorkerContext(
        **vars(resources),
        rasa=RasaClient(base_url=settings.rasa_url, timeout_s=settings.rasa_timeout_s),
        # A switched-off channel gets no sender: nothing reaches its provider.
        outbound={
            channel.name: channel.outbound(settings, http)
            for channel in CHANNELS
            if channel.outbound is not None and channel.name in resources.enabled_channels
        },
    )


async def close_context(ctx: WorkerContext) -> None:
    await ctx.rasa.close()
    await close_resources(ctx)


def build_consumers(ctx: WorkerContext, name: str) -> list[StreamConsumer]:
    s = ctx.settings
    common = {
        "consumer": name,
        "batch_size": s.worker_concurrency,
        "reclaim_idle_ms": s.queue_reclaim_idle_ms,
        "max_failures": s.queue_max_failures,
        "block_ms": s.queue_block_ms,
        "backoff_max_s": s.worker_backoff_max_s,
    }
    consumers = [
        StreamConsumer(
            queue,
            functools.partial(handle_inbound, ctx),
            on_dead_letter=functools.partial(on_inbound_dead_letter, ctx),
            **common,  # type: ignore[arg-type]
        )
        for queue in ctx.queues.inbound
    ]
    consumers += [
        StreamConsumer(
            queue,
            functools.partial(handle_outbound, ctx),
            on_dead_letter=functools.partial(on_outbound_dead_letter, ctx),
            **common,  # type: ignore[arg-type]
        )
        for queue in ctx.queues.outbound
    ]
    return consumers


async def sweep_once(ctx: WorkerContext) -> int:
    """Queue again what the streams lost: accepted messages the API stored but could not queue
    (Redis refused the XADD) or that a Redis failover dropped, and replies never delivered.

    Only what is *not* in a stream is queued again: a message still waiting or pending (Rasa
    down, a long backlog) is left alone, so an outage of any length makes no duplicates. New
    inbound work respects backpressure like the API does."""
    return await sweep_inbound(ctx) + await sweep_outbound(ctx)


async def sweep_inbound(ctx: WorkerContext) -> int:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ctx.settings.queue_sweep_after_s)
    # Read the streams first: a message acknowledged in between is then seen as processed
    # by the query below, never as lost.
    queued: set[str] = set()
    for queue in ctx.queues.inbound:
        queued |= await queue.values_of("message_id")
    async with ctx.db.read_sessions() as session:
        rows = (
            await session.execute(
                select(m.Message.id, m.Message.conversation_id)
                .where(m.Message.status == m.ACCEPTED, m.Message.created_at < cutoff)
                .order_by(m.Message.created_at)
                .limit(SWEEP_BATCH)
            )
        ).all()
    requeued = 0
    for message_id, conversation_id in rows:
        if str(message_id) in queued:
            continue
        queue = ctx.queues.inbound_for(str(conversation_id))
        try:
            await queue.check_capacity()
        except QueueFullError:
            log.warning("sweeper: inbound backlog full, re-queueing later")
            break
        await queue.add({"message_id": str(message_id), "conversation_id": str(conversation_id)})
        requeued += 1
    if requeued:
        log.warning("sweeper re-queued %d message(s)", requeued)
    return requeued


async def sweep_outbound(ctx: WorkerContext) -> int:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ctx.settings.queue_sweep_after_s)
    queued: set[str] = set()
    for queue in ctx.queues.outbound:
        queued |= await queue.values_of("message_ids")
    async with ctx.db.read_sessions() as session:
        rows = (
            await session.execute(
                select(m.Message.id, m.Message.conversation_id)
                .join(m.Conversation, m.Conversation.id == m.Message.conversation_id)
                .where(
                    m.Message.role.in_(REPLY_ROLES),
                    m.Message.delivered_at.is_(None),
                    m.Message.status != m.FAILED,
                    m.Message.created_at < cutoff,
                    # A channel the court switched off keeps its replies undelivered on purpose.
                    m.Conversation.channel.in_(sorted(ctx.enabled_channels)),
                )
                .order_by(m.Message.seq)
                .limit(SWEEP_BATCH)
            )
        ).all()
    lost: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for message_id, conversation_id in rows:
        if str(message_id) not in queued:
            lost[conversation_id].append(message_id)
    for conversation_id, ids in lost.items():
        await conversation_service.enqueue_delivery(
            queues=ctx.queues, conversation_id=conversation_id, message_ids=ids
        )
    if lost:
        log.warning("sweeper re-queued the replies of %d conversation(s)", len(lost))
    return sum(len(ids) for ids in lost.values())


async def prune_consumers_once(ctx: WorkerContext, *, idle_ms: int = 3_600_000) -> int:
    removed = 0
    for queue in ctx.queues.all():
        removed += len(await queue.prune_consumers(idle_ms=idle_ms, keep=consumer_name()))
    return removed


async def retention_once(ctx: WorkerContext) -> int | None:
    """Run the retention job unless another worker replica ran it in this interval."""
    key = f"{ctx.settings.queue_prefix}:retention-lock"
    if not await ctx.redis.set(key, consumer_name(), nx=True, ex=ctx.settings.retention_interval_s):
        return None
    async with ctx.db.write_sessions() as session:
        deleted = await lgpd_service.apply_retention(
            session=session, retention_days=ctx.settings.retention_days, resources=ctx
        )
    async with ctx.db.write_sessions() as session:
        anonymized = await lgpd_service.apply_anonymization(
            session=session,
            anonymize_after_days=ctx.settings.retention_anonymize_after_days,
            resources=ctx,
        )
    log.info("retention removed %d conversation(s), anonymised %d", deleted, anonymized)
    return deleted


async def expire_waits_once(ctx: WorkerContext) -> int:
    """Close the conversations that waited longer than maxWaitMinutes, telling each citizen
    their protocol (escalation.service.expire_waits)."""
    async with ctx.db.write_sessions() as session:
        closed = await escalation_service.expire_waits(session=session, settings=ctx.settings)
        await session.commit()
    for conversation, notice in closed:
        escalation_service.record_closure(team=conversation.team, code=EXPIRED)
        await notify.queue_changed(
            ctx, conversation_id=conversation.id, notices=[notice.id], teams=[conversation.team]
        )
    if closed:
        log.warning("%d conversation(s) waited past the maximum and were closed", len(closed))
    return len(closed)


async def _periodic(
    stop: asyncio.Event, every_s: float, job: Callable[[], Awaitable[object]]
) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.exception("periodic job failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


async def sample_queues(ctx: WorkerContext) -> None:
    """Stream gauges: backlog, pending, unread, oldest entry's age, dead letters."""
    for queue in ctx.queues.all():
        stats = await queue.stats()
        labels = {"stream": queue.kind, "partition": queue.partition}
        metrics.STREAM_LENGTH.labels(**labels).set(stats.length)
        metrics.STREAM_PENDING.labels(**labels).set(stats.pending)
        metrics.STREAM_LAG.labels(**labels).set(stats.lag)
        metrics.STREAM_OLDEST_AGE.labels(**labels).set(stats.oldest_age_s)
        metrics.STREAM_DEAD_LETTERS.labels(**labels).set(stats.dead_letters)


async def sample_level2(ctx: WorkerContext) -> None:
    """Level-2 gauges per team: queued, the head of the queue's wait, in progress."""
    now = dt.datetime.now(dt.UTC)
    async with ctx.db.read_sessions() as session:
        rows = (
            await session.execute(
                select(
                    m.Conversation.team,
                    m.Conversation.status,
                    func.count(),
                    # A transfer restarts the wait (as for maxWaitMinutes): the new team's line.
                    func.min(
                        func.coalesce(m.Conversation.wait_started_at, m.Conversation.queued_at)
                    ),
                )
                .where(m.Conversation.status.in_((m.QUEUED, m.HUMAN)))
                .group_by(m.Conversation.team, m.Conversation.status)
            )
        ).all()
    queued = {team: (0, 0.0) for team in TEAMS}
    in_progress = dict.fromkeys(TEAMS, 0)
    for team, status, count, oldest in rows:
        team = as_team(team)
        if status == m.QUEUED:
            wait = (now - oldest).total_seconds() if oldest is not None else 0.0
            queued[team] = (queued[team][0] + count, max(queued[team][1], wait))
        else:
            in_progress[team] += count
    for team in TEAMS:
        metrics.ESCALATION_QUEUE_LENGTH.labels(team=team).set(queued[team][0])
        metrics.ESCALATION_OLDEST_WAIT.labels(team=team).set(max(0.0, queued[team][1]))
        metrics.ESCALATION_IN_PROGRESS.labels(team=team).set(in_progress[team])


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    ctx = build_context(settings)
    name = consumer_name()
    log.info("worker %s starting (%d partition(s))", name, settings.queue_partitions)
    metrics.initialise_worker(
        channels=[channel.name for channel in CHANNELS],
        teams=TEAMS,
        partitions=settings.queue_partitions,
    )
    metrics.ESCALATION_MAX_WAIT.set(settings.escalation_max_wait_minutes * 60)
    try:
        tasks = [asyncio.create_task(c.run(stop)) for c in build_consumers(ctx, name)]
        tasks.append(asyncio.create_task(_periodic(stop, 60, functools.partial(sweep_once, ctx))))
        tasks.append(
            asyncio.create_task(_periodic(stop, 600, functools.partial(prune_consumers_once, ctx)))
        )
        tasks.append(
            asyncio.create_task(
                _periodic(
                    stop, settings.retention_interval_s, functools.partial(retention_once, ctx)
                )
            )
        )
        tasks.append(
            asyncio.create_task(
                _periodic(stop, METRICS_SAMPLE_S, functools.partial(sample_queues, ctx))
            )
        )
        tasks.append(
            asyncio.create_task(
                _periodic(stop, METRICS_SAMPLE_S, functools.partial(sample_level2, ctx))
            )
        )
        tasks.append(
            asyncio.create_task(
                _periodic(stop, EXPIRE_EVERY_S, functools.partial(expire_waits_once, ctx))
            )
        )
        await stop.wait()
        # Let in-flight batches finish: unacknowledged entries would be reclaimed anyway,
        # but finishing avoids a second Rasa call for the same message.
        await asyncio.wait(tasks, timeout=settings.rasa_timeout_s + 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await close_context(ctx)
        log.info("worker %s stopped", name)


def start_metrics_server(settings: Settings) -> None:
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr="0.0.0.0")  # noqa: S104
