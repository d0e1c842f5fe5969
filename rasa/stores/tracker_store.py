"""Rasa's SQL tracker store, cheaper per turn and able to ride out a PostgreSQL failover.

Same table, same rows, same session rules as `type: SQL` (rasa.core.tracker_store.SQLTrackerStore),
with these changes, each measured on a profile of one turn:

1. **No count before each save.** The stock store runs `SELECT count(*)` over the conversation's
   session on every save, only to know which of the tracker's events are new (13 % of the Rasa
   server's CPU per turn). A turn always reads the tracker (`retrieve`) before it saves it, inside
   the conversation's lock, so this store remembers how many events it read and inserts the rest.
   The count is trusted only for `COUNT_TRUST_S` after the read and only once; without it, the
   stock count runs.
2. **SQLAlchemy Core, not the ORM**, for the turn's read (one SELECT of the events' JSON) and
   write (one multi-row INSERT in one transaction): the ORM's unit of work was most of what was
   left of the store's CPU.
3. **A failover is waited out.** While PostgreSQL is unreachable, a pooled connection is dead (a
   restarted primary), or it ends up on a server that is now read-only, a read or a save is
   retried with back-off for up to `failover_timeout` seconds (30), awaiting between tries so the
   server keeps serving other conversations. With a multi-host URL and
   `target_session_attrs=read-write` in `url`, the new connections find the promoted replica.
   This replaces a pre-ping (a `SELECT 1` round trip on every checkout).

`POSTGRESQL_SCHEMA` is not supported (it would need the stock store's per-session schema check).

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
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
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
        self._read_counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        events = self.SQLEvent.__table__
        self._events = events
        session_start = (
            sa.select(sa.func.max(events.c.timestamp))
            .where(
                events.c.sender_id == sa.bindparam("sender_id"),
                events.c.type_name == SessionStarted.type_name,
            )
            .scalar_subquery()
        )
        # The stock store's query (events of the latest session, in id order), data only.
        self._latest_session = (
            sa.select(events.c.data)
            .where(
                events.c.sender_id == sa.bindparam("sender_id"),
                sa.or_(events.c.timestamp >= session_start, session_start.is_(None)),
            )
            .order_by(events.c.id)
        )

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

    def _read_latest_session(self, sender_id: str) -> DialogueStateTracker | None:
        with self.engine.connect() as connection:
            rows = connection.execute(self._latest_session, {"sender_id": sender_id}).scalars()
            events = [json.loads(data) for data in rows]
        if not (self.domain and events):
            return None
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        async def read() -> DialogueStateTracker | None:
            return self._read_latest_session(sender_id)

        tracker = await self._retrying(read)
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
            self._insert_new_events(tracker)

        await self.stream_events(tracker)

        try:
            await self._retrying(once)
        finally:
            self._read_counts.pop(tracker.sender_id, None)

    def _insert_new_events(self, tracker: DialogueStateTracker) -> None:
        with self.engine.begin() as connection:
            read = self._read_counts.get(tracker.sender_id)
            if read is None or time.monotonic() - read[1] > COUNT_TRUST_S:
                with Session(bind=connection) as session:
                    new_events = list(super()._additional_events(session, tracker))
            else:
                new_events = list(itertools.islice(tracker.events, read[0], None))
            rows = []
            for event in new_events:
                data = event.as_dict()
                rows.append(
                    {
                        "sender_id": tracker.sender_id,
                        "type_name": event.type_name,
                        "timestamp": data.get("timestamp"),
                        "intent_name": data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        "action_name": data.get("name"),
                        "data": json.dumps(data),
                    }
                )
            if rows:
                connection.execute(sa.insert(self._events), rows)
