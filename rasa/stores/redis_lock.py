"""A Redis lock store whose ticket updates are atomic and which follows a Sentinel failover, so
several Rasa replicas can share it on a highly available Redis.

Rasa OSS's RedisLockStore reads a conversation's lock, changes it in Python and writes it back.
Two replicas receiving messages of one conversation at the same moment can both read "no
tickets", both issue ticket 0 and both process at once (RasaHQ/rasa#9213; the fix,
ConcurrentRedisLockStore, is Rasa Pro only). Here every read-modify-write of the lock key runs as
an optimistic Redis transaction (WATCH/MULTI/EXEC, retried on conflict), so tickets are unique
and released in order. Same key layout and settings as `type: redis`.

The stock store is also pinned to one host. With `sentinels` set, the client asks the Sentinels
for the current primary and asks again when it fails over; while the failover runs (the old
primary is gone or answers read-only), each lock operation is retried for up to
`failover_timeout` seconds, without blocking the event loop, instead of failing the turn.

endpoints.yml::

    lock_store:
      type: stores.redis_lock.AtomicRedisLockStore
      url: <host>                 # ignored when sentinels are given
      port: <port>
      sentinels: <host:port,host:port,...>   # optional
      sentinel_master: <name>                # default "mymaster"
      ...
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from redis.sentinel import Sentinel

log = logging.getLogger(__name__)
Result = TypeVar("Result")

# While a conversation is busy, check again this often (Rasa's default waits a whole second).
LOCK_POLL_S = 0.05
# Errors of a Redis failover in progress: the primary is down, or still answers as a replica.
FAILOVER_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` → [(host, port), ...]; an empty string gives []."""
    hosts = []
    for item in value.split(","):
        item = item.strip()
        if item:
            host, _, port = item.rpartition(":")
            hosts.append((host or "127.0.0.1", int(port or 26379)))
    return hosts


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        kwargs = dict(endpoint_config.kwargs)
        sentinels = parse_sentinels(str(kwargs.pop("sentinels", "") or ""))
        master = str(kwargs.pop("sentinel_master", "") or "mymaster")
        self.failover_timeout_s = float(kwargs.pop("failover_timeout", 30) or 30)
        super().__init__(host=endpoint_config.url or "localhost", **kwargs)
        self.sentinel_master = master if sentinels else None
        if sentinels:
            password = kwargs.get("password") or None
            timeout = float(kwargs.get("socket_timeout", 10))
            # master_for's pool asks the Sentinels where the primary is on every (re)connect.
            # Sentinels that require a password (the operator's do) get Redis's: without it
            # every question is refused with NOAUTH and no primary is ever found.
            self.red = Sentinel(
                sentinels,
                sentinel_kwargs={"socket_timeout": timeout, "password": password},
            ).master_for(
                master,
                db=int(kwargs.get("db", 1)),
                password=password,
                username=kwargs.get("username") or None,
                socket_timeout=timeout,
            )

    async def _retrying(self, operation: Callable[[], Result]) -> Result:
        """Run a (synchronous, sub-millisecond) lock operation, retrying through a failover."""
        deadline = time.monotonic() + self.failover_timeout_s
        delay = 0.05
        while True:
            try:
                return operation()
            except FAILOVER_ERRORS as error:
                if time.monotonic() > deadline:
                    raise LockError(f"Redis unavailable for the lock store: {error}") from error
                log.warning("lock store: Redis unavailable (%s), retrying", type(error).__name__)
                if isinstance(error, redis.ReadOnlyError):
                    # A demoted primary: drop its connections so the next try asks the Sentinels.
                    self.red.connection_pool.disconnect()
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
            except redis.RedisError as error:
                raise LockError(f"Error while using the lock store: {error}") from error

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = LOCK_POLL_S,
    ) -> AsyncGenerator[TicketLock, None]:
        ticket = await self._retrying(lambda: self.issue_ticket(conversation_id, lock_lifetime))
        try:
            yield await self._acquire_lock(
                conversation_id, ticket, min(wait_time_in_seconds, LOCK_POLL_S)
            )
        finally:
            await self._retrying(lambda: self.cleanup(conversation_id, ticket))

    async def _acquire_lock(
        self, conversation_id: str, ticket: int, wait_time_in_seconds: float
    ) -> TicketLock:
        while True:
            lock = await self._retrying(lambda: self.get_lock(conversation_id))
            if lock is None:  # expired meanwhile
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            if not lock.is_locked(ticket):
                return lock
            await asyncio.sleep(wait_time_in_seconds)
            await self._retrying(lambda: self.update_lock(conversation_id))

    def _update(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[TicketLock | None, Result]],
    ) -> Result:
        """Apply `change` to the stored lock atomically; a returned None lock deletes the key."""
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    current = TicketLock.from_dict(json.loads(raw)) if raw else None
                    updated, result = change(current)
                    pipe.multi()
                    if updated is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, updated.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    # Another replica changed this conversation's lock meanwhile: redo.
                    continue

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: TicketLock | None) -> tuple[TicketLock, int]:
            lock = lock or self.create_lock(conversation_id)
            return lock, int(lock.issue_ticket(lock_lifetime))

        return self._update(conversation_id, issue)

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._update(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def finish(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._update(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        # Release the ticket and delete the key only if nobody is waiting, in one transaction:
        # otherwise a ticket issued between the two steps would be deleted with the key.
        def release(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._update(conversation_id, release)

    def lock_state(self, conversation_id: str) -> dict[str, Any] | None:
        """The stored lock as a dict (for tests and debugging)."""
        lock = self.get_lock(conversation_id)
        return None if lock is None else dict(json.loads(lock.dumps()))
