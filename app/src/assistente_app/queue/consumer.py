"""A consumer-group loop with at-least-once semantics, reclaim, retries and dead-lettering.

The handler decides what a failure means:

* returns normally            -> the entry is acknowledged (and deleted);
* raises ``TransientError``, or an error that says PostgreSQL or Redis is unavailable
  (``core.availability.is_outage``) -> a dependency is down (Rasa, a channel API, a database
  failover): the entry stays pending, is *not* counted as a failure, and the consumer backs off
  exponentially;
* raises anything else        -> the failure is counted and the entry waits (exponentially
  longer each time) before its next try; after ``max_failures`` it goes to the dead-letter
  stream.

While entries are being handled, the consumer keeps resetting their idle time, so another
consumer reclaims them only when this one has really stopped (not while Rasa is slow).

Entries of one conversation are handled in order, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from assistente_app.core import metrics
from assistente_app.core.availability import is_outage
from assistente_app.core.errors import TransientError
from assistente_app.core.logging import redact
from assistente_app.queue.streams import Entry, StreamQueue

log = logging.getLogger(__name__)

Handler = Callable[[Entry], Awaitable[None]]
DeadLetterHook = Callable[[Entry, str], Awaitable[None]]


class StreamConsumer:
    def __init__(
        self,
        queue: StreamQueue,
        handler: Handler,
        *,
        consumer: str,
        batch_size: int = 16,
        reclaim_idle_ms: int = 30_000,
        max_failures: int = 5,
        block_ms: int = 2_000,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        self.on_dead_letter = on_dead_letter
        self.queue = queue
        self.handler = handler
        self.consumer = consumer
        self.batch_size = batch_size
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_failures = max_failures
        self.block_ms = block_ms
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.backoff_s = 0.0
        self._retry_own = True  # after a restart, first finish what we had claimed
        # Entries that failed wait before their next try: entry id -> monotonic time.
        self._not_before: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        group_ready = False
        while not stop.is_set():
            try:
                # Inside the loop: Redis may not be there yet when the worker starts (Sentinel
                # still electing a primary), and a consumer that gave up would strand the queue.
                if not group_ready:
                    await self.queue.ensure_group()
                    group_ready = True
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis itself is unreachable: keep the process alive and try again.
                log.exception("consumer loop error on %s", self.queue.key)
                self._bump_backoff()
            if self.backoff_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.backoff_s)

    async def run_once(self, *, block_ms: int | None = None) -> int:
        """Fetch one batch (own retries, reclaimed, new) and handle it. Returns its size."""
        entries: list[Entry] = []
        if self._retry_own:
            now = time.monotonic()
            own = await self.queue.read_own_pending(self.consumer, count=self.batch_size)
            entries += [e for e in own if self._not_before.get(e.id, 0.0) <= now]
            waiting = {e.id for e in own} - {e.id for e in entries}
            self._not_before = {k: v for k, v in self._not_before.items() if k in waiting}
        seen = {e.id for e in entries} | set(self._not_before)
        for entry in await self.queue.reclaim(
            self.consumer, min_idle_ms=self.reclaim_idle_ms, count=self.batch_size
        ):
            if entry.id not in seen:
                entries.append(entry)
                seen.add(entry.id)
        if len(entries) < self.batch_size:
            wait = self.block_ms if block_ms is None else block_ms
            entries += await self.queue.read_new(
                self.consumer, count=self.batch_size - len(entries), block_ms=wait or None
            )
        if not entries:
            self._retry_own = bool(self._not_before)
            return 0
        outcomes = await self._handle_batch(entries)
        transient = "retry" in outcomes
        self._retry_own = transient or "failed" in outcomes or bool(self._not_before)
        if transient:
            self._bump_backoff()
        else:
            self.backoff_s = 0.0
        return len(entries)

    def _bump_backoff(self) -> None:
        self.backoff_s = min(
            self.backoff_max_s, max(self.backoff_initial_s, self.backoff_s * 2 or 0.0)
        )

    async def _handle_batch(self, entries: list[Entry]) -> list[str]:
        by_conversation: dict[str, list[Entry]] = defaultdict(list)
        for entry in sorted(entries, key=lambda e: tuple(int(x) for x in e.id.split("-"))):
            by_conversation[entry.fields.get("conversation_id", entry.id)].append(entry)

        async def _sequential(group: list[Entry]) -> list[str]:
            results = []
            for index, entry in enumerate(group):
                outcome = await self._handle(entry)
                results.append(outcome)
                if outcome == "retry":
                    # Keep order: later messages of this conversation wait for this one.
                    results += ["retry"] * (len(group) - index - 1)
                    break
            return results

        heartbeat = asyncio.create_task(self._keep_claimed([e.id for e in entries]))
        try:
            groups = await asyncio.gather(*(_sequential(g) for g in by_conversation.values()))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        return [outcome for group in groups for outcome in group]

    async def _keep_claimed(self, entry_ids: list[str]) -> None:
        every_s = self.reclaim_idle_ms / 3000
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.queue.touch(self.consumer, entry_ids)
            except Exception as exc:  # Redis blinked: the next beat tries again
                log.warning("could not keep entries claimed: %s", type(exc).__name__)

    async def _handle(self, entry: Entry) -> str:
        try:
            await self.handler(entry)
        except Exception as exc:
            if isinstance(exc, TransientError) or is_outage(exc):
                log.warning(
                    "transient failure, will retry: %s",
                    redact(f"{type(exc).__name__}: {exc}"),
                    extra={"stream": entry.stream},
                )
                metrics.WORKER_RETRIES.labels(stream=self.queue.kind, reason="transient").inc()
                return "retry"
            failures = await self.queue.record_failure(entry.id)
            log.exception(
                "entry %s failed (%d/%d)",
                entry.id,
                failures,
                self.max_failures,
                extra={"stream": entry.stream},
            )
            if failures < self.max_failures:
                delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (failures - 1))
                self._not_before[entry.id] = time.monotonic() + delay
                metrics.WORKER_RETRIES.labels(stream=self.queue.kind, reason="error").inc()
                outcome = "failed"
            else:
                reason = redact(f"{type(exc).__name__}: {exc}")
                if self.on_dead_letter is not None:
                    try:
                        await self.on_dead_letter(entry, reason)
                    except Exception:
                        log.exception("dead-letter hook failed for %s", entry.id)
                await self.queue.dead_letter(entry, reason)
                metrics.DEAD_LETTERS.labels(stream=self.queue.kind).inc()
                outcome = "dead"
        else:
            await self.queue.ack(entry.id)
            outcome = "done"
        return outcome
