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
from collections.abc import Awaitable, Callable

from prometheus_client import start_http_server
from sqlalchemy import select

from assistente_app.channels.registry import CHANNELS, enabled_channels
from assistente_app.conversations import models as m
from assistente_app.core import metrics
from assistente_app.escalation import notify
from assistente_app.escalation import service as escalation_service
from assistente_app.lgpd import service as lgpd_service
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.runtime import build_resources, close_resources
from assistente_app.settings import Settings
from assistente_app.worker.handlers import (
    WorkerContext,
    handle_inbound,
    handle_outbound,
    on_inbound_dead_letter,
)
from assistente_app.worker.rasa import RasaClient

log = logging.getLogger(__name__)

# How often queued conversations are checked against maxWaitMinutes.
EXPIRE_EVERY_S = 30.0


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
        StreamConsumer(queue, functools.partial(handle_outbound, ctx), **common)  # type: ignore[arg-type]
        for queue in ctx.queues.outbound
    ]
    return consumers


async def sweep_once(ctx: WorkerContext) -> int:
    """Queue again accepted messages that never reached (or fell out of) the stream, e.g. the
    API stored them but Redis refused the XADD, or a Redis failover lost the entry."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ctx.settings.queue_sweep_after_s)
    async with ctx.db.read_sessions() as session:
        rows = (
            await session.execute(
                select(m.Message.id, m.Message.conversation_id)
                .where(m.Message.status == m.ACCEPTED, m.Message.created_at < cutoff)
                .limit(500)
            )
        ).all()
    requeued = 0
    for message_id, conversation_id in rows:
        # At most once per window per message: entries still pending (Rasa down) are not
        # duplicated endlessly; duplicates that do happen are ignored by handle_inbound.
        key = f"{ctx.settings.queue_prefix}:swept:{message_id}"
        if await ctx.redis.set(key, "1", nx=True, ex=ctx.settings.queue_sweep_after_s):
            await ctx.queues.inbound_for(str(conversation_id)).add(
                {"message_id": str(message_id), "conversation_id": str(conversation_id)}
            )
            requeued += 1
    if requeued:
        log.warning("sweeper re-queued %d message(s)", requeued)
    return requeued


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
            session=session, retention_days=ctx.settings.retention_days
        )
    async with ctx.db.write_sessions() as session:
        anonymized = await lgpd_service.apply_anonymization(
            session=session, anonymize_after_days=ctx.settings.retention_anonymize_after_days
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


async def _update_depth(ctx: WorkerContext) -> None:
    for queue in ctx.queues.all():
        metrics.QUEUE_DEPTH.labels(stream=queue.key).set(await queue.depth())


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    ctx = build_context(settings)
    name = consumer_name()
    log.info("worker %s starting (%d partition(s))", name, settings.queue_partitions)
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
            asyncio.create_task(_periodic(stop, 15, functools.partial(_update_depth, ctx)))
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
