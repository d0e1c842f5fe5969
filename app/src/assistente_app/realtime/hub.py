"""Fan-out of conversation events to WebSocket (and voice) waiters on any API replica.

The worker and the API publish events on one Redis pub/sub channel; every API process keeps a
single subscription and routes events to its local subscribers by topic: a conversation's id
(the citizen's socket, the clerk who has it open) or a named topic such as :data:`QUEUES_TOPIC`
(the clerks' live queues). One Redis connection per process, not per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger(__name__)


# Something changed in a level-2 queue or among the clerks online: the clerks' boards refresh.
QUEUES_TOPIC = "queues"

# Published when a conversation's token stops giving access (LGPD erasure): open sockets close.
REVOKED_EVENT = "revoked"

# Sent by the hub itself to its subscribers (never published): "you may have missed events".
RESYNC = "resync"
RESUBSCRIBE_MIN_S = 0.1
RESUBSCRIBE_MAX_S = 2.0


def events_channel(prefix: str) -> str:
    return f"{prefix}:events"


def topic_of(event: dict[str, Any]) -> str:
    """Where an event goes: its ``topic``, else the conversation it is about."""
    return str(event.get("topic") or event.get("conversation_id"))


async def publish_event(redis: Redis, prefix: str, event: dict[str, Any]) -> None:
    await redis.publish(events_channel(prefix), json.dumps(event, ensure_ascii=False, default=str))


class EventPublisher:
    """Publishes events for every API replica (usable from the API and the worker)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def publish(self, event: dict[str, Any]) -> None:
        await publish_event(self.redis, self.prefix, event)

    async def queues_changed(self, *teams: str | None) -> None:
        await self.publish({"topic": QUEUES_TOPIC, "type": "queues_changed", "teams": teams})


class EventHub:
    """The process's one subscription to the events channel, fanned out to its sockets.

    It owns ``redis``, a client of its own: while Redis is away the hub keeps trying to
    subscribe, and those half-made connections must not go back to the pool the request path
    uses (the first command after Redis returned would fail on one of them)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.channel = events_channel(prefix)
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def subscribed(self) -> bool:
        """Whether events reach this process now (part of its readiness)."""
        return self._ready.is_set()

    async def start(self, wait_s: float = 10.0) -> None:
        """Subscribes in the background, for good: after a loss it subscribes again. Waits up
        to `wait_s` for the first subscription; a Redis that is not there yet is no reason not
        to start (`subscribed` stays false, and /readyz says so)."""
        self._task = asyncio.create_task(self._listen(), name="event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    async def _listen(self) -> None:
        delay = RESUBSCRIBE_MIN_S
        subscribed_before = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if subscribed_before:
                    # Events published while we were not subscribed (a Redis failover, a
                    # dropped connection) are gone: every socket re-reads what it missed.
                    self._resync_all()
                subscribed_before = True
                self._ready.set()
                delay = RESUBSCRIBE_MIN_S
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message["data"])
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except Exception:
                self._ready.clear()
                log.exception("event subscription lost; resubscribing")
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(delay)
                delay = min(RESUBSCRIBE_MAX_S, delay * 2)

    def _resync_all(self) -> None:
        """Tell every subscriber it may have missed events: a citizen's socket re-reads its
        replies, the clerks' board refreshes (it does on any event)."""
        for topic, queues in list(self._subscribers.items()):
            for queue in list(queues):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait({"type": RESYNC, "topic": topic, "conversation_id": topic})

    def _dispatch(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return
        for queue in list(self._subscribers.get(topic_of(event), ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A stuck client must not stall everyone; it reloads history on reconnect.
                log.warning("dropping an event for a slow subscriber")

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """Events of one topic (a conversation id, or a named topic like QUEUES_TOPIC)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[topic].discard(queue)
            if not self._subscribers[topic]:
                del self._subscribers[topic]
