"""Rasa's SQL tracker store, cheaper per turn and able to ride out a PostgreSQL failover.

Same table, same rows, same queries for reading as `type: SQL` (rasa.core.tracker_store.
SQLTrackerStore), with three changes measured on a profile of one turn:

1. **No count before each save.** The stock store runs `SELECT count(*)` over the conversation's
   session on every save, only to know which of the tracker's events are new (13 % of the Rasa
   server's CPU per turn). A turn always reads the tracker (`retrieve`) before it saves it, inside
   the conversation's lock, so this store remembers how many events it read and inserts the rest.
   The count is trusted only for `COUNT_TRUST_S` after the read and only once; without it, the
   stock count runs.
2. **Pooled connections are checked before use** (`pool_pre_ping`), so a restarted primary costs
   a reconnect instead of a failed turn.
3. **A failover is waited out.** While PostgreSQL is unreachable, or a pooled connection ends up
   on a server that is now read-only, a read or a save is retried with back-off for up to
   `failover_timeout` seconds (30), awaiting between tries so the server keeps serving other
   conversations. With a multi-host URL and `target_session_attrs=read-write` in `url`, the new
   connections find the promoted replica.

endpoints.yml::

    tracker_store:
      type: stores.tracker_store.FailoverSQLTrackerStore
      dialect: postgresql
      url: <host>          # or a whole SQLAlchemy URL, e.g. with several hosts
      ...                  # every option of `type: SQL`
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
Result = TypeVar("Result")

# A count read this long ago may have been overtaken by another replica: count again instead.
COUNT_TRUST_S = 60.0
# Conversations whose read count is kept between a read and its save (a read without a save,
# e.g. the HTTP API's GET tracker, must not make this grow without bound).
MAX_REMEMBERED = 10_000


def _is_failover(error: sa.exc.DBAPIError) -> bool:
    """The database is not there right now (refused, restarting, in recovery, a dropped
    connection) or we are talking to a server that is now a standby; not "this turn is wrong"."""
    if error.connection_invalidated:
        return True
    if isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return True
    return "read-only transaction" in str(error.orig)


class FailoverSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, failover_timeout: float | str = 30, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failover_timeout_s = float(failover_timeout or 30)
        url = self.engine.url
        self.engine.dispose()
        self.engine: Any = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._read_counts: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def _retrying(self, operation: Callable[[], Awaitable[Result]]) -> Result:
        deadline = time.monotonic() + self.failover_timeout_s
        delay = 0.1
        while True:
            try:
                return await operation()
            except sa.exc.DBAPIError as error:
                if not _is_failover(error) or time.monotonic() > deadline:
                    raise
                log.warning("tracker store: database unavailable (%s), retrying", error.orig)
                # Connections to a server that went away or became a standby: start afresh.
                self.engine.dispose()
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        tracker = await self._retrying(lambda: SQLTrackerStore.retrieve(self, sender_id))
        self._read_counts[sender_id] = (
            len(tracker.events) if tracker is not None else 0,
            time.monotonic(),
        )
        self._read_counts.move_to_end(sender_id)
        while len(self._read_counts) > MAX_REMEMBERED:
            self._read_counts.popitem(last=False)
        return tracker

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        return await self._retrying(
            lambda: SQLTrackerStore.retrieve_full_tracker(self, conversation_id)
        )

    async def save(self, tracker: DialogueStateTracker) -> None:
        attempts = 0

        async def once() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The failed try may have committed before its connection dropped: count what
                # is stored rather than trust the read.
                self._read_counts.pop(tracker.sender_id, None)
            await SQLTrackerStore.save(self, tracker)

        try:
            await self._retrying(once)
        finally:
            self._read_counts.pop(tracker.sender_id, None)

    def _additional_events(self, session: Session, tracker: DialogueStateTracker) -> Iterator[Any]:
        read = self._read_counts.get(tracker.sender_id)
        if read is None or time.monotonic() - read[1] > COUNT_TRUST_S:
            counted: Iterator[Any] = super()._additional_events(session, tracker)
            return counted
        return itertools.islice(tracker.events, read[0], len(tracker.events))
