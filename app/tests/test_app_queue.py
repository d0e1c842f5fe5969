"""Redis Streams semantics against a real Redis: at-least-once, reclaim, dead letters,
transient failures, backpressure, replication and the sweeper."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from assistente_app.conversations import models as m
from assistente_app.core.errors import TransientError
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.queue.streams import Entry, QueueFullError, StreamQueue, stream_key
from assistente_app.worker.handlers import handle_inbound, on_inbound_dead_letter
from assistente_app.worker.runner import sweep_once
from assistente_testbed.process import free_port
from assistente_testbed.redis import RedisServer
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import select

from .conftest import Harness, SettingsFactory, running_app, wait_for


@pytest.fixture
async def redis(redis_server: Any) -> Any:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


def new_queue(redis: Redis, **kwargs: Any) -> StreamQueue:
    return StreamQueue(redis, stream_key(f"q{uuid.uuid4().hex[:8]}", "inbound", 0), **kwargs)


async def test_failures_are_retried_then_dead_lettered(redis: Redis) -> None:
    queue = new_queue(redis)
    await queue.ensure_group()
    await queue.add({"conversation_id": "c1", "n": "1"})
    attempts: list[str] = []
    dead: list[tuple[str, str]] = []

    async def broken(entry: Entry) -> None:
        attempts.append(entry.id)
        raise ValueError("mensagem impossível")

    async def hook(entry: Entry, reason: str) -> None:
        dead.append((entry.id, reason))

    consumer = StreamConsumer(
        queue,
        broken,
        consumer="c",
        max_failures=3,
        block_ms=10,
        on_dead_letter=hook,
        backoff_initial_s=0.3,
    )
    await consumer.run_once()
    await consumer.run_once(block_ms=0)
    assert len(attempts) == 1  # a failed entry waits before its next try (no hot loop)

    async def dead_lettered() -> list[tuple[str, str]]:
        await consumer.run_once(block_ms=0)
        return dead

    await wait_for(dead_lettered, within=10)
    assert len(attempts) == 3
    assert len(set(attempts)) == 1
    assert dead == [(attempts[0], "ValueError: mensagem impossível")]
    assert await queue.depth() == 0
    assert await queue.pending_count() == 0
    dead_entries = await redis.xrange(queue.dead_key)
    assert dead_entries is not None
    assert len(dead_entries) == 1
    dead_fields = dead_entries[0][1]
    assert dead_fields is not None
    assert dead_fields["original_id"] == attempts[0]
    assert dead_fields["n"] == "1"
    assert await redis.hlen(queue.failures_key) == 0


async def test_transient_errors_never_dead_letter(redis: Redis) -> None:
    queue = new_queue(redis)
    await queue.ensure_group()
    await queue.add({"conversation_id": "c1"})
    calls = 0

    async def rasa_down(entry: Entry) -> None:
        nonlocal calls
        calls += 1
        if calls < 8:
            raise TransientError("Rasa unreachable")

    consumer = StreamConsumer(queue, rasa_down, consumer="c", max_failures=2, block_ms=10)
    backoffs = []
    for _ in range(7):
        await consumer.run_once()
        backoffs.append(consumer.backoff_s)
        assert await queue.pending_count() == 1
    assert backoffs == sorted(backoffs)
    assert backoffs[-1] > backoffs[0]
    assert await redis.xlen(queue.dead_key) == 0
    await consumer.run_once()
    assert calls == 8
    assert await queue.depth() == 0
    assert consumer.backoff_s == 0


async def test_dead_consumer_entries_are_reclaimed(redis: Redis) -> None:
    queue = new_queue(redis)
    await queue.ensure_group()
    entry_id = await queue.add({"conversation_id": "c1", "text": "oi"})
    # Consumer A takes the entry and dies without acknowledging it.
    taken = await queue.read_new("consumer-a", count=10, block_ms=None)
    assert [e.id for e in taken] == [entry_id]

    handled: list[str] = []

    async def ok(entry: Entry) -> None:
        handled.append(entry.id)

    survivor = StreamConsumer(queue, ok, consumer="consumer-b", reclaim_idle_ms=200, block_ms=10)
    await survivor.run_once()
    assert handled == []  # not idle long enough yet: A might still be working
    await wait_for(lambda: survivor.run_once(), within=5)
    assert handled == [entry_id]
    assert await queue.pending_count() == 0
    assert await queue.depth() == 0


async def test_entries_of_one_conversation_keep_their_order(redis: Redis) -> None:
    queue = new_queue(redis)
    await queue.ensure_group()
    for n in range(5):
        await queue.add({"conversation_id": "same", "n": str(n)})
    await queue.add({"conversation_id": "other", "n": "x"})
    seen: list[str] = []

    async def record(entry: Entry) -> None:
        seen.append(entry.fields["n"])

    await StreamConsumer(queue, record, consumer="c", batch_size=10).run_once(block_ms=0)
    assert [n for n in seen if n != "x"] == ["0", "1", "2", "3", "4"]


async def test_backpressure_refuses_before_storing(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async with running_app(make_settings(queue_max_length=2), oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        assert (await h.post_message(conversation_id, token, "1")).status_code == 202
        assert (await h.post_message(conversation_id, token, "2")).status_code == 202
        refused = await h.post_message(conversation_id, token, "3")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "queue_full"
        assert refused.headers["retry-after"] == "30"
        texts = [x["text"] for x in (await h.history(conversation_id, token))["messages"]]
        assert texts == ["1", "2"]


async def test_queue_full_error_from_check_capacity(redis: Redis) -> None:
    queue = new_queue(redis, max_length=1)
    await queue.add({"a": "1"})
    with pytest.raises(QueueFullError):
        await queue.check_capacity()


async def test_replicated_redis_waits_for_replica(redis_server: Any) -> None:
    # Full sync without the default 5 s diskless-sync delay.
    redis_server.cli("CONFIG", "SET", "repl-diskless-sync-delay", "0")
    replica = RedisServer(replica_of=redis_server).start()
    try:
        primary = Redis.from_url(redis_server.url, decode_responses=True)
        follower = Redis.from_url(replica.url, decode_responses=True)
        await wait_for(lambda: _replica_linked(follower))
        queue = StreamQueue(
            primary, stream_key(f"r{uuid.uuid4().hex[:6]}", "inbound", 0), min_replicas_ack=1
        )
        await queue.add({"conversation_id": "c", "message_id": "m"})
        # WAIT returned only after the replica acknowledged the write.
        assert await follower.xlen(queue.key) == 1
        await primary.aclose()
        await follower.aclose()
    finally:
        replica.remove()


async def _replica_linked(client: Redis) -> bool:
    info = await client.info("replication")
    return bool(info.get("master_link_status") == "up")


async def test_processed_message_redelivered_is_not_sent_to_rasa_again(
    harness: Harness,
) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    posted = (await harness.post_message(conversation_id, token, "oi")).json()
    async with harness.worker.db.write_sessions() as session:
        message = await session.get(m.Message, uuid.UUID(posted["id"]))
        assert message is not None
        message.status = m.PROCESSED
        await session.commit()
    # rasa_url points at the default port where no Rasa runs in this suite: calling it would
    # raise TransientError, so returning cleanly proves it was not called.
    entry = Entry("s", "1-0", {"message_id": posted["id"], "conversation_id": conversation_id})
    await handle_inbound(harness.worker, entry)


async def test_rasa_unreachable_is_transient_and_keeps_message(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    settings = make_settings(rasa_url="http://127.0.0.1:9", rasa_timeout_s=2.0)
    async with running_app(settings, oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        posted = (await h.post_message(conversation_id, token, "oi")).json()
        entry = Entry("s", "1-0", {"message_id": posted["id"], "conversation_id": conversation_id})
        with pytest.raises(TransientError):
            await handle_inbound(h.worker, entry)
        history = await h.history(conversation_id, token)
        assert [x["role"] for x in history["messages"]] == ["user"]
        async with h.worker.db.read_sessions() as session:
            status = await session.scalar(
                select(m.Message.status).where(m.Message.id == uuid.UUID(posted["id"]))
            )
        assert status == m.ACCEPTED


async def test_dead_letter_tells_the_citizen(harness: Harness) -> None:
    conversation_id, token, protocol = await harness.open_conversation()
    posted = (await harness.post_message(conversation_id, token, "???")).json()
    entry = Entry("s", "1-0", {"message_id": posted["id"], "conversation_id": conversation_id})
    await on_inbound_dead_letter(harness.worker, entry, "ValueError: boom")
    assert await harness.deliver_outbound() == 1
    messages = (await harness.history(conversation_id, token))["messages"]
    assert messages[-1]["role"] == "system"
    assert protocol in messages[-1]["text"]
    async with harness.worker.db.read_sessions() as session:
        status = await session.scalar(
            select(m.Message.status).where(m.Message.id == uuid.UUID(posted["id"]))
        )
    assert status == m.FAILED


async def test_sweeper_requeues_stored_but_unqueued_messages(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async with running_app(make_settings(queue_sweep_after_s=1), oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        posted = (await h.post_message(conversation_id, token, "perdida?")).json()
        queue = h.resources.queues.inbound_for(conversation_id)
        # Simulate a Redis failover that lost the entry after the API answered 202.
        await h.resources.redis.delete(queue.key)
        await queue.ensure_group()

        found: list[str] = []

        async def swept() -> bool:
            await sweep_once(h.worker)
            entries = await queue.read_new("probe", count=1000, block_ms=None)
            found.extend(e.fields["message_id"] for e in entries)
            return posted["id"] in found

        # (The database is shared by the suite, so other tests' messages may be swept too.)
        await wait_for(swept, within=10)
        assert found.count(posted["id"]) == 1
        # Now pending (read by "probe", not acknowledged, as while Rasa is down): the sweeper
        # leaves it alone however often it runs.
        for _ in range(3):
            await sweep_once(h.worker)
        again = await queue.read_new("probe", count=1000, block_ms=None)
        assert posted["id"] not in [e.fields["message_id"] for e in again]
        assert (await queue.values_of("message_id")) >= {posted["id"]}


async def test_sweeper_respects_backpressure(make_settings: SettingsFactory, oidc: Any) -> None:
    settings = make_settings(queue_sweep_after_s=1, queue_max_length=2)
    async with running_app(settings, oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        lost = (await h.post_message(conversation_id, token, "perdida")).json()
        queue = h.resources.queues.inbound_for(conversation_id)
        await h.resources.redis.delete(queue.key)
        await queue.ensure_group()
        for n in range(2):  # the backlog is full of other work
            await queue.add({"message_id": f"outro-{n}", "conversation_id": "x"})

        async def old_enough() -> bool:
            async with h.worker.db.read_sessions() as session:
                created = await session.scalar(
                    select(m.Message.created_at).where(m.Message.id == uuid.UUID(lost["id"]))
                )
            assert created is not None
            return (dt.datetime.now(dt.UTC) - created).total_seconds() > 1.5

        await wait_for(old_enough, within=10)
        await sweep_once(h.worker)
        assert await queue.depth() == 2
        assert lost["id"] not in await queue.values_of("message_id")


async def test_admin_sees_and_requeues_dead_letters(harness: Harness) -> None:
    conversation_id, token, _ = await harness.open_conversation()
    posted = (await harness.post_message(conversation_id, token, "quebra o worker")).json()
    queue = harness.resources.queues.inbound_for(conversation_id)

    async def poison(entry: Entry) -> None:
        raise RuntimeError("bug no processamento")

    consumer = StreamConsumer(
        queue,
        poison,
        consumer="c",
        max_failures=1,
        block_ms=10,
        on_dead_letter=lambda e, r: on_inbound_dead_letter(harness.worker, e, r),
    )
    await consumer.run_once()
    admin = harness.oidc.headers("ops", ("admin",))
    assert (
        await harness.client.get("/api/v1/admin/queue", headers=harness.oidc.headers())
    ).status_code == 403
    stats = {
        s["stream"]: s
        for s in (await harness.client.get("/api/v1/admin/queue", headers=admin)).json()
    }
    assert stats[queue.key]["dead_letters"] == 1
    assert stats[queue.key]["depth"] == 0
    dead = (await harness.client.get("/api/v1/admin/queue/dead-letters", headers=admin)).json()
    assert [d["message_id"] for d in dead] == [posted["id"]]
    assert dead[0]["error"] == "RuntimeError: bug no processamento"

    requeued = await harness.client.post(
        f"/api/v1/admin/queue/dead-letters/{dead[0]['id']}/requeue", headers=admin
    )
    assert requeued.status_code == 200
    entries = await queue.read_new("probe", count=10, block_ms=None)
    assert [e.fields["message_id"] for e in entries] == [posted["id"]]
    async with harness.worker.db.read_sessions() as session:
        status = await session.scalar(
            select(m.Message.status).where(m.Message.id == uuid.UUID(posted["id"]))
        )
    assert status == m.ACCEPTED
    missing = await harness.client.post(
        "/api/v1/admin/queue/dead-letters/1-1/requeue", headers=admin
    )
    assert missing.status_code == 404


async def test_idle_empty_consumers_are_pruned_but_not_busy_ones(redis: Redis) -> None:
    queue = new_queue(redis)
    await queue.ensure_group()
    await queue.add({"conversation_id": "a"})
    await queue.add({"conversation_id": "b"})
    done = await queue.read_new("finished-pod", count=1, block_ms=None)
    await queue.ack(done[0].id)
    await queue.read_new("crashed-pod", count=1, block_ms=None)  # keeps one entry pending
    removed = await queue.prune_consumers(idle_ms=0, keep="me")
    assert removed == ["finished-pod"]
    assert await queue.pending_count() == 1


async def test_a_consumer_started_before_redis_waits_for_it(tmp_path: Any) -> None:
    """Workers may start before Redis answers (a Sentinel still electing its primary): the
    consumer keeps trying and then handles what was queued, instead of giving up for good."""
    port = free_port()
    # No retries inside the client: each refused connection reaches the consumer at once.
    client = Redis(host="127.0.0.1", port=port, decode_responses=True, retry=Retry(NoBackoff(), 0))
    queue = new_queue(client)
    handled: list[str] = []
    stop = asyncio.Event()

    async def handle(entry: Entry) -> None:
        handled.append(entry.fields["n"])
        stop.set()

    consumer = StreamConsumer(queue, handle, consumer="early", block_ms=100, backoff_max_s=0.5)
    running = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(0.5)
    assert not running.done(), "the consumer gave up while Redis was away"
    with RedisServer(tmp_path / "late-redis", port=port):
        await queue.add({"conversation_id": "c1", "n": "1"})
        await asyncio.wait_for(running, timeout=30)
    await client.aclose()
    assert handled == ["1"]
