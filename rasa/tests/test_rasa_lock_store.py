"""The atomic lock store against a real Redis: two "replicas" (store instances with their own
connections), many threads, one conversation; and against Sentinels while the primary dies."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator

import pytest
from assistente_testbed.redis import RedisServer
from assistente_testbed.redis_ha import RedisSentinelSet
from rasa.utils.endpoints import EndpointConfig
from stores.redis_lock import AtomicRedisLockStore


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=False)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def replica(server: RedisServer) -> AtomicRedisLockStore:
    config = EndpointConfig(
        url=server.host, type="stores.redis_lock.AtomicRedisLockStore",
        port=server.port, db=1, key_prefix="assistente",
    )  # fmt: skip
    return AtomicRedisLockStore(config)


def test_concurrent_tickets_are_unique(redis_server: RedisServer) -> None:
    stores = [replica(redis_server), replica(redis_server)]
    tickets: list[int] = []
    guard = threading.Lock()

    def issue(n: int) -> None:
        ticket = stores[n % 2].issue_ticket("conversa-tickets", 60)
        with guard:
            tickets.append(ticket)

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(tickets) == list(range(min(tickets), min(tickets) + 40))


def test_one_holder_at_a_time_across_replicas(redis_server: RedisServer) -> None:
    stores = [replica(redis_server), replica(redis_server)]
    guard = threading.Lock()
    active = 0
    most_active = 0
    done = 0

    async def hold(store: AtomicRedisLockStore) -> None:
        nonlocal active, most_active, done
        async with store.lock("conversa-fila", wait_time_in_seconds=0.005):
            with guard:
                active += 1
                most_active = max(most_active, active)
            await asyncio.sleep(0.02)
            with guard:
                active -= 1
                done += 1

    threads = [
        threading.Thread(target=lambda n=n: asyncio.run(hold(stores[n % 2]))) for n in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert done == 12
    assert most_active == 1
    # Everything released: the key is gone.
    assert stores[0].lock_state("conversa-fila") is None


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[RedisSentinelSet]:
    with RedisSentinelSet() as servers:
        yield servers


def sentinel_replica(servers: RedisSentinelSet) -> AtomicRedisLockStore:
    config = EndpointConfig(
        url="ignored-when-sentinels-are-given", type="stores.redis_lock.AtomicRedisLockStore",
        db=1, key_prefix="assistente", sentinels=servers.sentinel_addresses,
        sentinel_master=servers.master_name,
    )  # fmt: skip
    return AtomicRedisLockStore(config)


def test_lock_store_follows_a_sentinel_failover(sentinel_set: RedisSentinelSet) -> None:
    store = sentinel_replica(sentinel_set)

    async def hold(conversation: str) -> tuple[dict[str, object] | None, str]:
        """Take the lock; while holding it, look for its key on the primary the Sentinels name."""
        async with store.lock(conversation):
            primary = sentinel_set.wait_for_primary(excluding=killed, timeout=30)
            key = f"assistente:lock:{conversation}"
            return store.lock_state(conversation), primary.cli("-n", "1", "EXISTS", key)

    killed: RedisServer | None = None
    state, on_primary = asyncio.run(hold("conversa-antes"))
    assert state is not None
    assert state["tickets"]
    assert on_primary == "1", "the lock lives on the primary the Sentinels discovered"

    killed = sentinel_set.kill_primary()
    # Issued right after the crash: retried, without blocking the loop, until a replica is
    # promoted, then served by it.
    state, on_primary = asyncio.run(hold("conversa-durante"))
    assert state is not None
    assert state["tickets"]
    assert on_primary == "1", "the lock lives on the new primary"
    assert sentinel_set.primary() is not killed
    sentinel_set.restart(killed)
    assert store.lock_state("conversa-durante") is None, "released on the new primary"


def test_lock_store_signs_in_to_sentinels_that_require_a_password() -> None:
    """The operator's Redis and Sentinels all require the security Secret's password: the store
    gives it to the Sentinels too, or it never learns where the primary is."""
    password = secrets.token_hex(16)
    with RedisSentinelSet(replicas=1, sentinels=1, password=password) as servers:
        config = EndpointConfig(
            url="ignored-when-sentinels-are-given", type="stores.redis_lock.AtomicRedisLockStore",
            db=1, key_prefix="assistente", sentinels=servers.sentinel_addresses,
            sentinel_master=servers.master_name, password=password,
        )  # fmt: skip
        store = AtomicRedisLockStore(config)

        async def hold() -> str:
            async with store.lock("conversa-com-senha"):
                key = "assistente:lock:conversa-com-senha"
                return servers.primary().cli("-n", "1", "EXISTS", key)

        assert asyncio.run(hold()) == "1"
        assert store.lock_state("conversa-com-senha") is None
