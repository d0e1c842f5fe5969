"""Admin view of the queues: depth, pending, dead letters, and re-queueing a dead letter."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import update

from assistente_app.api.deps import AdminDep, ResourcesDep, SessionDep
from assistente_app.conversations import models as m
from assistente_app.core.errors import NotFoundError
from assistente_app.queue.streams import is_entry_id

router = APIRouter(prefix="/api/v1/admin/queue", tags=["queue"])

ENTRY_ID = r"^\d{1,20}-\d{1,20}$"


class StreamStats(BaseModel):
    stream: str
    depth: int
    pending: int
    dead_letters: int


class DeadLetter(BaseModel):
    stream: str
    id: str
    original_id: str | None
    message_id: str | None
    conversation_id: str | None
    error: str | None


@router.get("", response_model=list[StreamStats])
async def queue_stats(_admin: AdminDep, resources: ResourcesDep) -> list[StreamStats]:
    """Backlog (waiting + pending), pending (delivered, not acknowledged) and dead letters."""
    stats = []
    for queue in resources.queues.all():
        await queue.ensure_group()
        stats.append(
            StreamStats(
                stream=queue.key,
                depth=await queue.depth(),
                pending=await queue.pending_count(),
                dead_letters=int(await resources.redis.xlen(queue.dead_key)),
            )
        )
    return stats


@router.get("/dead-letters", response_model=list[DeadLetter])
async def dead_letters(
    _admin: AdminDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeadLetter]:
    """Oldest dead letters first, across every stream."""
    items: list[DeadLetter] = []
    for queue in resources.queues.all():
        entries: Any = await resources.redis.xrange(queue.dead_key, count=limit)
        for entry_id, fields in entries:
            items.append(
                DeadLetter(
                    stream=queue.key,
                    id=str(entry_id),
                    original_id=fields.get("original_id"),
                    message_id=fields.get("message_id"),
                    conversation_id=fields.get("conversation_id"),
                    error=fields.get("error"),
                )
            )
    return items[:limit]


@router.post("/dead-letters/{entry_id}/requeue", response_model=DeadLetter)
async def requeue_dead_letter(
    _admin: AdminDep,
    resources: ResourcesDep,
    session: SessionDep,
    entry_id: Annotated[str, Path(pattern=ENTRY_ID)],
) -> DeadLetter:
    """Put a dead letter back on its stream (e.g. after fixing the cause)."""
    if not is_entry_id(entry_id):  # beyond 64 bits: Redis would refuse the id itself
        raise NotFoundError("Entrada não encontrada nas filas de mensagens mortas.")
    for queue in resources.queues.all():
        found: Any = await resources.redis.xrange(queue.dead_key, min=entry_id, max=entry_id)
        if not found:
            continue
        fields: dict[str, str] = dict(found[0][1])
        original = {k: v for k, v in fields.items() if k not in ("original_id", "error")}
        if message_id := original.get("message_id"):
            # A failed message becomes processable again.
            await session.execute(
                update(m.Message)
                .where(m.Message.id == uuid.UUID(message_id), m.Message.status == m.FAILED)
                .values(status=m.ACCEPTED)
            )
            await session.commit()
        if reply_ids := [uuid.UUID(i) for i in original.get("message_ids", "").split(",") if i]:
            # Replies a channel refused become deliverable again.
            await session.execute(
                update(m.Message)
                .where(m.Message.id.in_(reply_ids), m.Message.status == m.FAILED)
                .values(status=m.STORED)
            )
            await session.commit()
        await queue.add(original)
        await resources.redis.xdel(queue.dead_key, entry_id)
        return DeadLetter(
            stream=queue.key,
            id=entry_id,
            original_id=fields.get("original_id"),
            message_id=original.get("message_id"),
            conversation_id=original.get("conversation_id"),
            error=fields.get("error"),
        )
    raise NotFoundError("Entrada não encontrada nas filas de mensagens mortas.")
