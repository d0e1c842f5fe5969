"""What follows a change to a level-2 queue, wherever it happened (API, worker): the citizen's
notice goes out on their channel, everyone still waiting in the team hears their new place, and
the clerks' boards refresh."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from assistente_app.conversations import service as conversation_service
from assistente_app.escalation import service
from assistente_app.runtime import Resources


async def announce_positions(resources: Resources, team: str | None) -> None:
    """Tell everyone still waiting in ``team`` their new place (live, over WebSocket)."""
    if not team:
        return
    async with resources.db.read_sessions() as session:
        standings = await service.team_standings(
            session=session, settings=resources.settings, team=team
        )
    for conversation_id, place in standings:
        await resources.events.publish(
            {
                "type": "queue",
                "conversation_id": str(conversation_id),
                "team": team,
                "position": place.position,
                "estimated_wait_minutes": place.estimated_wait_minutes,
            }
        )


async def queue_changed(
    resources: Resources,
    *,
    conversation_id: uuid.UUID | None = None,
    notices: Iterable[uuid.UUID] = (),
    teams: Iterable[str | None] = (),
) -> None:
    """Call after the change is committed."""
    notices = list(notices)
    if conversation_id is not None and notices:
        await conversation_service.enqueue_delivery(
            queues=resources.queues, conversation_id=conversation_id, message_ids=notices
        )
    changed = list(dict.fromkeys(t for t in teams if t))
    for team in changed:
        await announce_positions(resources, team)
    await resources.events.queues_changed(*changed)
