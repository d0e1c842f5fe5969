"""A Redis lock store whose ticket updates are atomic, so several Rasa replicas can share it.

Rasa OSS's RedisLockStore reads a conversation's lock, changes it in Python and writes it back.
Two replicas receiving messages of one conversation at the same moment can both read "no
tickets", both issue ticket 0 and both process at once (RasaHQ/rasa#9213; the fix,
ConcurrentRedisLockStore, is Rasa Pro only). Here every read-modify-write of the lock key runs as
an optimistic Redis transaction (WATCH/MULTI/EXEC, retried on conflict), so tickets are unique
and released in order. Same key layout and settings as `type: redis`.

endpoints.yml::

    lock_store:
      type: stores.redis_lock.AtomicRedisLockStore
      url: <host>
      port: <port>
      ...
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

log = logging.getLogger(__name__)
Result = TypeVar("Result")


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(host=endpoint_config.url or "localhost", **endpoint_config.kwargs)

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

        try:
            return self._update(conversation_id, issue)
        except redis.RedisError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

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
