"""The clerks' live board: every team's queue, who is handling what, the supervisor's figures.

One ``LiveBoard`` per API replica recomputes the board when the event hub says a queue changed
(three queries, whatever the number of clerks connected to this replica), and every clerk's
socket sends its share of it. Clerks online are kept in Redis with a heartbeat, so a supervisor
sees the clerks of every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from assistente_contract import TEAMS, team_label
from redis.asyncio import Redis
from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.auth.oidc import Clerk
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.core.db import Database
from assistente_app.core.settings import CoreSettings
from assistente_app.escalation.catalog import SYSTEM_CODES
from assistente_app.realtime.hub import QUEUES_TOPIC, EventHub

log = logging.getLogger(__name__)

# A clerk's socket says it is alive this often; a clerk unheard of for PRESENCE_TTL_S is offline.
HEARTBEAT_S = 20.0
PRESENCE_TTL_S = 60.0
# Changes closer together than this are shown in one refresh.
DEBOUNCE_S = 0.15
# Even with no event, refresh this often (clerks appearing, day rollover of "closed today").
REFRESH_S = 30.0


@dataclass(frozen=True)
class BoardItem:
    conversation_id: uuid.UUID
    protocol: str
    channel: str
    team: str
    status: str
    position: int | None
    queued_at: dt.datetime | None
    claimed_at: dt.datetime | None
    agent_sub: str | None
    reason: str | None
    summary: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": str(self.conversation_id),
            "protocol": self.protocol,
            "channel": self.channel,
            "team": self.team,
            "team_label": team_label(self.team),
            "status": self.status,
            "position": self.position,
            "queued_at": self.queued_at.isoformat() if self.queued_at else None,
            "claimed_at": self.claimed_at.isoformat() if self.claimed_at else None,
            "agent_sub": self.agent_sub,
            "reason": self.reason,
            "summary": self.summary or {},
        }


@dataclass(frozen=True)
class OnlineClerk:
    subject: str
    name: str
    teams: tuple[str, ...]
    supervisor: bool


@dataclass(frozen=True)
class Board:
    at: dt.datetime
    items: tuple[BoardItem, ...]
    closed_today: dict[str, int]
    """Closed by a clerk today, per team (the court's day, in its time zone)."""
    unattended_today: dict[str, int]
    """Left the queue today without a clerk: gave up, or waited past the maximum."""
    online: tuple[OnlineClerk, ...]
    version: int = 0

    def for_clerk(self, clerk: Clerk) -> dict[str, Any]:
        """What one clerk's console shows: the queues of their teams, their conversations and,
        for a supervisor, the figures of every team."""
        queues = [
            item.as_json()
            for item in self.items
            if item.status == m.QUEUED and clerk.sees_team(item.team)
        ]
        mine = [
            item.as_json()
            for item in self.items
            if item.status == m.HUMAN and item.agent_sub == clerk.subject
        ]
        view: dict[str, Any] = {
            "type": "board",
            "server_time": self.at.isoformat(),
            "queues": queues,
            "mine": mine,
            "supervision": None,
        }
        if clerk.supervisor or clerk.admin:
            view["supervision"] = self.supervision()
        return view

    def supervision(self) -> dict[str, Any]:
        teams = []
        for team in TEAMS:
            waiting = [i for i in self.items if i.team == team and i.status == m.QUEUED]
            oldest = min((i.queued_at for i in waiting if i.queued_at), default=None)
            teams.append(
                {
                    "team": team,
                    "label": team_label(team),
                    "waiting": len(waiting),
                    "oldest_queued_at": oldest.isoformat() if oldest else None,
                    "in_service": sum(
                        1 for i in self.items if i.team == team and i.status == m.HUMAN
                    ),
                    "clerks_online": sum(1 for c in self.online if team in c.teams),
                    "closed_today": self.closed_today.get(team, 0),
                    "unattended_today": self.unattended_today.get(team, 0),
                }
            )
        return {
            "teams": teams,
            "clerks_online": [
                {
                    "name": c.name,
                    "teams": list(c.teams),
                    "supervisor": c.supervisor,
                    "handling": sum(
                        1 for i in self.items if i.status == m.HUMAN and i.agent_sub == c.subject
                    ),
                }
                for c in self.online
            ],
        }


async def read_board(
    *, session: AsyncSession, settings: CoreSettings, online: tuple[OnlineClerk, ...] = ()
) -> Board:
    rows = await session.execute(
        select(m.Conversation)
        .where(m.Conversation.status.in_((m.QUEUED, m.HUMAN)))
        .order_by(m.Conversation.queued_at, m.Conversation.id)
    )
    positions: dict[str | None, int] = {}
    items = []
    for row in rows.scalars():
        position = None
        if row.status == m.QUEUED:
            positions[row.team] = position = positions.get(row.team, 0) + 1
        items.append(
            BoardItem(
                conversation_id=row.id,
                protocol=row.protocol,
                channel=row.channel,
                team=row.team or "geral",
                status=row.status,
                position=position,
                queued_at=row.queued_at,
                claimed_at=row.claimed_at,
                agent_sub=row.agent_sub,
                reason=row.escalation_reason,
                summary=row.summary,
            )
        )
    now = conversation_service.now_utc()
    midnight = dt.datetime.combine(now.astimezone(settings.tz).date(), dt.time(), settings.tz)
    team = m.Message.payload["team"].astext
    code = m.Message.payload["code"].astext
    closures = await session.execute(
        select(team, code, func.count())
        .where(
            # Literals, so the planner matches the partial index ix_messages_closures.
            m.Message.role == literal_column("'system'"),
            m.Message.payload["type"].astext == literal_column("'resolved'"),
            m.Message.created_at >= midnight,
        )
        .group_by(team, code)
    )
    closed: dict[str, int] = {}
    unattended: dict[str, int] = {}
    for team_id, code_id, count in closures.all():
        tally = unattended if code_id in SYSTEM_CODES else closed
        tally[str(team_id)] = tally.get(str(team_id), 0) + int(count)
    return Board(
        at=now,
        items=tuple(items),
        closed_today=closed,
        unattended_today=unattended,
        online=online,
    )


# --- presence -------------------------------------------------------------------------------


class Presence:
    """Clerks online, across replicas: a sorted set of subjects scored by last heartbeat, and a
    hash with what the supervisor sees of each (name, teams)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.seen_key = f"{prefix}:clerks:seen"
        self.info_key = f"{prefix}:clerks:info"

    async def heartbeat(self, clerk: Clerk) -> None:
        info = {"name": clerk.name, "teams": sorted(clerk.teams), "supervisor": clerk.supervisor}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.seen_key, {clerk.subject: time.time()})
            pipe.hset(self.info_key, clerk.subject, json.dumps(info, ensure_ascii=False))
            await pipe.execute()

    async def leave(self, subject: str) -> None:
        await self.redis.zrem(self.seen_key, subject)

    async def online(self) -> tuple[OnlineClerk, ...]:
        cutoff = time.time() - PRESENCE_TTL_S
        await self.redis.zremrangebyscore(self.seen_key, "-inf", cutoff)
        subjects = [s.decode() if isinstance(s, bytes) else str(s) for s in
                    await self.redis.zrange(self.seen_key, 0, -1)]  # fmt: skip
        if not subjects:
            return ()
        infos = await self.redis.hmget(self.info_key, subjects)
        clerks = []
        for subject, raw in zip(subjects, infos, strict=True):
            info = json.loads(raw) if raw else {}
            clerks.append(
                OnlineClerk(
                    subject=subject,
                    name=str(info.get("name") or "Atendente"),
                    teams=tuple(info.get("teams") or ()),
                    supervisor=bool(info.get("supervisor")),
                )
            )
        return tuple(sorted(clerks, key=lambda c: c.name))


# --- the live board of one replica ----------------------------------------------------------


@dataclass
class LiveBoard:
    """Keeps the current board and wakes every waiting socket when it changes."""

    db: Database
    settings: CoreSettings
    hub: EventHub
    presence: Presence
    _board: Board | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            await self.refresh()
            self._task = asyncio.create_task(self._follow(), name="live-board")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> Board:
        online = await self.presence.online()
        async with self.db.read_sessions() as session:
            board = await read_board(session=session, settings=self.settings, online=online)
        async with self._changed:
            version = self._board.version + 1 if self._board else 1
            self._board = dataclasses.replace(board, version=version)
            self._changed.notify_all()
        return self._board

    async def current(self) -> Board:
        if self._board is None:
            return await self.refresh()
        return self._board

    async def changes(self, after: int) -> AsyncIterator[Board]:
        """Each new board after version ``after`` (a slow socket skips to the latest)."""
        seen = after
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._newer_than, seen))
                assert self._board is not None
                board = self._board
            seen = board.version
            yield board

    def _newer_than(self, version: int) -> bool:
        return self._board is not None and self._board.version > version

    async def _follow(self) -> None:
        async with self.hub.subscribe(QUEUES_TOPIC) as events:
            while True:
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(events.get(), timeout=REFRESH_S)
                        await asyncio.sleep(DEBOUNCE_S)
                        while not events.empty():  # one refresh for a burst of changes
                            events.get_nowait()
                    await self.refresh()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("live board refresh failed; retrying")
                    await asyncio.sleep(1)
