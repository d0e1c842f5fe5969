"""Rasa's SQL tracker store, as LGPD erasure and retention see it.

Rasa keeps every event of every conversation (what the citizen wrote, slots such as the case
number) in the ``events`` table of its own database, keyed by ``sender_id``, which is our
conversation id. Rasa OSS never deletes them, so the app does: the rows of erased conversations,
of anonymised ones, and everything older than the retention period.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_FORGET = text("DELETE FROM events WHERE sender_id IN :senders").bindparams(
    bindparam("senders", expanding=True)
)
_EXPIRE = text("DELETE FROM events WHERE timestamp < :before")
_EXISTS = text("SELECT to_regclass('events') IS NOT NULL")


class RasaTracker:
    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(url, pool_size=2, hide_parameters=True)

    async def _table_exists(self) -> bool:
        async with self.engine.connect() as connection:
            return bool(await connection.scalar(_EXISTS))

    async def forget(self, conversation_ids: Sequence[uuid.UUID]) -> int:
        """Delete every event of these conversations; returns how many."""
        if not conversation_ids or not await self._table_exists():
            return 0
        async with self.engine.begin() as connection:
            result = await connection.execute(
                _FORGET, {"senders": [str(i) for i in conversation_ids]}
            )
        return int(result.rowcount)

    async def expire(self, before: dt.datetime) -> int:
        """Delete every event older than ``before`` (Rasa stores epoch seconds)."""
        if not await self._table_exists():
            return 0
        async with self.engine.begin() as connection:
            result = await connection.execute(_EXPIRE, {"before": before.timestamp()})
        return int(result.rowcount)

    async def dispose(self) -> None:
        await self.engine.dispose()
