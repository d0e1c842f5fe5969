"""A consumer-group loop with at-least-once semantics, reclaim, retries and dead-lettering.

The handler decides what a failure means:

* returns normally            -> the entry is acknowledged (and deleted);
* raises ``TransientError``   -> a dependency is down (Rasa, a channel API): the entry stays
  pending, is *not* counted as a failure, and the consumer backs off exponentially;
* raises anything else        -> the failure is counted; after ``max_failures`` the entry goes
  to the dead-letter stream.

Entries of one conversation are handled in order, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from assistente_app.core import metrics
from assistente_app.core.errors import TransientError
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
            entries += await self.queue.read_own_pending(self.consumer, count=self.batch_size)
        seen = {e.id for e in entries}
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
            self._retry_own = False
            return 0
        outcomes = await self._handle_batch(entries)
        transient = "retry" in outcomes
        self._retry_own = transient or "failed" in outcomes
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

        groups = await asyncio.gather(*(_sequential(g) for g in by_conversation.values()))
        return [outcome for group in groups for outcome in group]

    async def _handle(self, entry: Entry) -> str:
        try:
            await self.handler(entry)
        except TransientError as exc:
            log.warning("transient failure, will retry: %s", exc, extra={"stream": entry.stream})
            metrics.WORKER_RETRIES.labels(stream=self.queue.kind, reason="transient").inc()
            outcome = "retry"
        except Exception as exc:
            failures = await self.queue.record_failure(entry.id)
            log.exception(
                "entry %s failed (%d/%d)",
                entry.id,
                failures,
                self.max_failures,
                extra={"stream": entry.stream},
            )
            if failures >= self.max_failures:
                reason = f"{type(exc).__name__}: {exc}"
                if self.on_dead_letter is not None:
                    try:
                        await self.on_dead_letter(entry, reason)
                    except Exception:
                        log.exception("dead-letter hook failed for %s", entry.id)
                await self.queue.dead_letter(entry, reason)
                metrics.DEAD_LETTERS.labels(stream=self.queue.kind).inc()
                outcome = "dead"
            else:
                metrics.WORKER_RETRIES.labels(stream=self.queue.kind, reason="error").inc()
                outcome = "failed"
        else:
            await self.queue.ack(entry.id)
            outcome = "done"
        return outcome
