"""Redis Streams with a consumer group: the durable hand-off between the API and the worker.

Key layout (every key of one stream shares the same ``{hash tag}``, so on Redis Cluster a stream,
its dead-letter stream and its failure counters live in one slot and MULTI works):

* ``<prefix>:{inbound-<p>}``           user messages for the worker, partition ``p``
* ``<prefix>:{inbound-<p>}:dead``      entries that failed ``queue_max_failures`` times
* ``<prefix>:{inbound-<p>}:failures``  hash entry-id -> failure count
* ``<prefix>:{outbound-<p>}``          replies to deliver on the citizen's channel

Entries are deleted (XDEL) when acknowledged, so ``XLEN`` is exactly the backlog (waiting plus
pending), which is what backpressure and the queue-depth metric need.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import zlib
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from assistente_app.core.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

GROUP = "workers"
DEPTH_CACHE_S = 0.5
# Dead letters are for people to look at and requeue, not an archive: the oldest go first.
DEAD_LETTERS_KEPT = 10_000


@dataclass(frozen=True)
class Entry:
    stream: str
    id: str
    fields: dict[str, str]
    redelivered: bool = False
    """Handed out before (a retry of our own, or reclaimed from another consumer)."""

    @property
    def age_s(self) -> float:
        """Seconds since the entry was added (stream ids start with a millisecond timestamp)."""
        return time.time() - int(self.id.split("-", 1)[0]) / 1000


def is_entry_id(value: str) -> bool:
    """Whether Redis would take ``value`` as a stream entry id (two unsigned 64-bit numbers)."""
    millis, dash, sequence = value.partition("-")
    return bool(
        dash
        and millis.isdigit()
        and sequence.isdigit()
        and int(millis) < 2**64
        and int(sequence) < 2**64
    )


def stream_key(prefix: str, kind: str, partition: int) -> str:
    return f"{prefix}:{{{kind}-{partition}}}"


def partition_for(conversation_id: str, partitions: int) -> int:
    # crc32 is stable across processes (unlike hash()), so a conversation always maps to the
    # same partition and its messages stay ordered.
    return zlib.crc32(conversation_id.encode()) % partitions


_KEY_TAG = re.compile(r"\{(?P<kind>[a-z]+)-(?P<partition>\d+)\}")


@dataclass(frozen=True)
class StreamStats:
    """What the worker's metrics report for one stream (read in one round trip)."""

    length: int
    pending: int
    lag: int
    oldest_age_s: float
    dead_letters: int


class QueueFullError(ServiceUnavailableError):
    """The backlog is at ``max_length``: new work is refused until the workers catch up."""

    code = "queue_full"


class StreamQueue:
    """One stream plus its consumer group, dead-letter stream and failure counters."""

    def __init__(
        self, redis: Redis, key: str, *, max_length: int = 0, min_replicas_ack: int = 0
    ) -> None:
        self.redis = redis
        self.key = key
        self.dead_key = f"{key}:dead"
        self.failures_key = f"{key}:failures"
        self.max_length = max_length
        self.min_replicas_ack = min_replicas_ack
        self._depth = 0
        self._depth_at = -DEPTH_CACHE_S
        tag = _KEY_TAG.search(key)
        # "inbound"/"outbound" and the partition number: the metrics' labels.
        self.kind = tag["kind"] if tag else key
        self.partition = tag["partition"] if tag else "0"

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def depth(self) -> int:
        return int(await self.redis.xlen(self.key))

    async def check_capacity(self) -> None:
        """Refuse new work while the backlog is at ``max_length`` (backpressure).

        The depth is cached for ``DEPTH_CACHE_S``: backpressure needs no per-request precision
        and this saves a Redis round trip on the hot path."""
        if not self.max_length:
            return
        now = time.monotonic()
        if now - self._depth_at > DEPTH_CACHE_S or self._depth >= self.max_length:
            self._depth = await self.depth()
            self._depth_at = now
        else:
            self._depth += 1  # count our own additions between refreshes
        if self._depth >= self.max_length:
            raise QueueFullError(
                "O atendimento está com muita demanda. Tente novamente em instantes.",
                retry_after_s=30,
            )

    async def add(self, fields: dict[str, str]) -> str:
        """Append an entry. Capacity is checked by the caller *before* it stores anything:
        once a message is stored it must always be queued."""
        entry_id = str(await self.redis.xadd(self.key, fields))  # type: ignore[arg-type]
        if self.min_replicas_ack:
            # WAIT makes the entry survive a primary failover before we promise the citizen.
            acked = await self.redis.wait(self.min_replicas_ack, 1000)
            if acked < self.min_replicas_ack:
                log.warning("entry %s reached only %d replica(s)", entry_id, acked)
        return entry_id

    async def read_new(self, consumer: str, *, count: int, block_ms: int | None) -> list[Entry]:
        return await self._read(consumer, ">", count=count, block_ms=block_ms)

    async def read_own_pending(self, consumer: str, *, count: int) -> list[Entry]:
        """Entries delivered to this consumer and not acknowledged yet (retries)."""
        return await self._read(consumer, "0", count=count, block_ms=None)

    async def _read(
        self, consumer: str, start: str, *, count: int, block_ms: int | None
    ) -> list[Entry]:
        response: Any = await self.redis.xreadgroup(
            GROUP, consumer, {self.key: start}, count=count, block=block_ms
        )
        entries: list[Entry] = []
        for _stream, items in response or []:
            for entry_id, fields in items:
                if fields:  # an id without fields was deleted meanwhile
                    entries.append(
                        Entry(self.key, str(entry_id), dict(fields), redelivered=start != ">")
                    )
        return entries

    async def touch(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries this consumer is still working on, so a slow call
        (Rasa near its timeout) is not mistaken for a dead consumer and handled twice."""
        if entry_ids:
            ids: list[Any] = list(entry_ids)
            await self.redis.xclaim(
                self.key,
                GROUP,
                consumer,
                min_idle_time=0,
                message_ids=ids,
                justid=True,
            )

    async def values_of(self, field: str, *, chunk: int = 1000) -> set[str]:
        """Every value of ``field`` in the stream (waiting and pending entries): what the
        sweepers must not queue twice. O(backlog), read in chunks."""
        values: set[str] = set()
        start = "-"
        while True:
            items: Any = await self.redis.xrange(self.key, min=start, count=chunk)
            for entry_id, fields in items:
                if value := fields.get(field):
                    values.update(value.split(","))
                start = f"({entry_id}"
            if len(items) < chunk:
                return values

    async def reclaim(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries another (probably dead) consumer left pending for too long."""
        result = await self.redis.xautoclaim(
            self.key, GROUP, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
        )
        claimed = result[1] if len(result) > 1 else []
        return [Entry(self.key, str(i), dict(f), redelivered=True) for i, f in claimed if f]

    async def ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.key, GROUP, entry_id)
            pipe.xdel(self.key, entry_id)
            pipe.hdel(self.failures_key, entry_id)
            await pipe.execute()

    async def record_failure(self, entry_id: str) -> int:
        return int(await self.redis.hincrby(self.failures_key, entry_id, 1))

    async def dead_letter(self, entry: Entry, error: str) -> None:
        """Move the entry to the dead-letter stream. ``error`` must already be free of personal
        data and secrets (``core.logging.redact``); the stream keeps the newest
        ``DEAD_LETTERS_KEPT`` entries and LGPD erasure removes a conversation's."""
        fields = dict(entry.fields)
        fields.update({"original_id": entry.id, "error": error[:500]})
        await self.redis.xadd(
            self.dead_key,
            fields,  # type: ignore[arg-type]
            maxlen=DEAD_LETTERS_KEPT,
            approximate=True,
        )
        await self.ack(entry.id)

    async def trim_dead_letters(self, *, before: dt.datetime) -> int:
        """Drop dead letters older than ``before`` (retention)."""
        oldest_kept = f"{int(before.timestamp() * 1000)}-0"
        return int(await self.redis.xtrim(self.dead_key, minid=oldest_kept, approximate=False))

    async def forget_conversation(self, conversation_id: str) -> int:
        """Delete every entry of one conversation, waiting, pending or dead (LGPD erasure)."""
        removed = 0
        for key in (self.key, self.dead_key):
            start = "-"
            doomed: list[str] = []
            while True:
                items: Any = await self.redis.xrange(key, min=start, count=1000)
                for entry_id, fields in items:
                    if fields.get("conversation_id") == conversation_id:
                        doomed.append(str(entry_id))
                    start = f"({entry_id}"
                if len(items) < 1000:
                    break
            if doomed:
                async with self.redis.pipeline(transaction=True) as pipe:
                    if key == self.key:
                        pipe.xack(self.key, GROUP, *doomed)
                        pipe.hdel(self.failures_key, *doomed)
                    pipe.xdel(key, *doomed)
                    await pipe.execute()
                removed += len(doomed)
        return removed

    async def prune_consumers(self, *, idle_ms: int, keep: str) -> list[str]:
        """Forget consumers of dead processes (each pod restart makes a new consumer name) once
        they hold nothing: pending entries are never dropped, they are reclaimed instead."""
        removed = []
        consumers: Any = await self.redis.xinfo_consumers(self.key, GROUP)
        for consumer in consumers:
            name = str(consumer["name"])
            if name != keep and int(consumer["pending"]) == 0 and int(consumer["idle"]) >= idle_ms:
                await self.redis.xgroup_delconsumer(self.key, GROUP, name)
                removed.append(name)
        return removed

    async def stats(self) -> StreamStats:
        """Backlog, pending, unread (the group's lag), the oldest entry's age, dead letters."""
        await self.ensure_group()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.key)
            pipe.xrange(self.key, count=1)
            pipe.xlen(self.dead_key)
            pipe.xinfo_groups(self.key)
            length, first, dead, groups = await pipe.execute()
        group: dict[str, Any] = next((g for g in groups if str(g["name"]) == GROUP), {})
        oldest_age = Entry(self.key, str(first[0][0]), {}).age_s if first else 0.0
        return StreamStats(
            length=int(length),
            pending=int(group.get("pending") or 0),
            lag=int(group.get("lag") or 0),
            oldest_age_s=max(0.0, oldest_age),
            dead_letters=int(dead),
        )

    async def pending_count(self) -> int:
        info = await self.redis.xpending(self.key, GROUP)
        return int(info["pending"]) if info else 0


@dataclass(frozen=True)
class Queues:
    """The inbound and outbound partitions of one deployment."""

    inbound: list[StreamQueue]
    outbound: list[StreamQueue]

    def inbound_for(self, conversation_id: str) -> StreamQueue:
        return self.inbound[partition_for(conversation_id, len(self.inbound))]

    def outbound_for(self, conversation_id: str) -> StreamQueue:
        return self.outbound[partition_for(conversation_id, len(self.outbound))]

    def all(self) -> list[StreamQueue]:
        return [*self.inbound, *self.outbound]

    async def ensure_groups(self) -> None:
        for queue in self.all():
            await queue.ensure_group()


def build_queues(
    redis: Redis, *, prefix: str, partitions: int, max_length: int, min_replicas_ack: int = 0
) -> Queues:
    return Queues(
        inbound=[
            StreamQueue(
                redis,
                stream_key(prefix, "inbound", p),
                max_length=max_length,
                min_replicas_ack=min_replicas_ack,
            )
            for p in range(partitions)
        ],
        # Replies are never refused: backpressure applies only to new inbound work.
        outbound=[
            StreamQueue(redis, stream_key(prefix, "outbound", p), min_replicas_ack=min_replicas_ack)
            for p in range(partitions)
        ],
    )
