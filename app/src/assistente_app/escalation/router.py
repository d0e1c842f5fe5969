"""Agent API (OIDC role ``agent`` or ``admin``): queue, claim, reply, transfer, resolve."""

from __future__ import annotations

import uuid
from typing import Annotated

from assistente_contract import Team
from fastapi import APIRouter, Query, status

from assistente_app.api.deps import AgentDep, ReadSessionDep, ResourcesDep, SessionDep
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.conversations.schemas import MessageList, MessageOut
from assistente_app.escalation import service
from assistente_app.escalation.schemas import (
    AgentReply,
    ConversationState,
    QueueItem,
    TransferRequest,
)
from assistente_app.realtime.hub import publish_event
from assistente_app.runtime import Resources

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


async def _announce_positions(resources: Resources, team: str | None) -> None:
    """Tell everyone still waiting in ``team`` their new place (live, over WebSocket)."""
    if not team:
        return
    async with resources.db.write_sessions() as session:
        standings = await service.team_standings(
            session=session, settings=resources.settings, team=team
        )
    for conversation_id, place in standings:
        await publish_event(
            resources.redis,
            resources.settings.queue_prefix,
            {
                "type": "queue",
                "conversation_id": str(conversation_id),
                "team": team,
                "position": place.position,
                "estimated_wait_minutes": place.estimated_wait_minutes,
            },
        )


def _state(conversation: m.Conversation) -> ConversationState:
    return ConversationState(
        conversation_id=conversation.id,
        protocol=conversation.protocol,
        status=conversation.status,
        team=conversation.team,
        agent_sub=conversation.agent_sub,
    )


@router.get("/queue", response_model=list[QueueItem])
async def list_queue(
    _agent: AgentDep, session: ReadSessionDep, team: Annotated[Team | None, Query()] = None
) -> list[QueueItem]:
    """Conversations waiting for a human, oldest first (per team when ``team`` is given)."""
    rows = await service.list_queue(session=session, team=team)
    positions: dict[str | None, int] = {}
    items = []
    for row in rows:
        positions[row.team] = positions.get(row.team, 0) + 1
        items.append(
            QueueItem(
                conversation_id=row.id,
                protocol=row.protocol,
                channel=row.channel,
                team=row.team,
                reason=row.escalation_reason,
                queued_at=row.queued_at,
                position=positions[row.team],
            )
        )
    return items


@router.get("/conversations/{conversation_id}/messages", response_model=MessageList)
async def conversation_history(
    conversation_id: uuid.UUID, _agent: AgentDep, session: ReadSessionDep
) -> MessageList:
    conversation = await service.get_conversation(session=session, conversation_id=conversation_id)
    return MessageList(
        conversation_id=conversation.id,
        protocol=conversation.protocol,
        status=conversation.status,
        messages=await conversation_service.list_messages(
            session=session, conversation_id=conversation.id
        ),
    )


@router.post("/conversations/{conversation_id}/claim", response_model=ConversationState)
async def claim(
    conversation_id: uuid.UUID, agent: AgentDep, session: SessionDep, resources: ResourcesDep
) -> ConversationState:
    """Take a queued conversation; from now on the bot stays silent in it."""
    conversation, notice = await service.claim(
        session=session,
        conversation_id=conversation_id,
        agent_sub=agent.subject,
        agent_name=agent.name,
    )
    await session.commit()
    service.record_claim(conversation)
    await conversation_service.enqueue_delivery(
        queues=resources.queues, conversation_id=conversation.id, message_ids=[notice.id]
    )
    await _announce_positions(resources, conversation.team)
    return _state(conversation)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=status.HTTP_202_ACCEPTED,
)
async def reply(
    conversation_id: uuid.UUID,
    body: AgentReply,
    agent: AgentDep,
    session: SessionDep,
    resources: ResourcesDep,
) -> MessageOut:
    """Answer the citizen; delivered on the citizen's channel by the worker."""
    conversation = await service.get_conversation(session=session, conversation_id=conversation_id)
    service.ensure_owner(conversation, agent.subject, is_admin="admin" in agent.roles)
    message = await conversation_service.add_message(
        session=session,
        conversation_id=conversation.id,
        role="agent",
        text_=body.text,
        agent_sub=agent.subject,
    )
    conversation.last_activity_at = conversation_service.now_utc()
    await session.commit()
    await conversation_service.enqueue_delivery(
        queues=resources.queues, conversation_id=conversation.id, message_ids=[message.id]
    )
    return MessageOut.model_validate(message)


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationState)
async def transfer(
    conversation_id: uuid.UUID,
    body: TransferRequest,
    agent: AgentDep,
    session: SessionDep,
    resources: ResourcesDep,
) -> ConversationState:
    """Send the conversation to another team's queue, keeping its place in line."""
    conversation = await service.get_conversation(session=session, conversation_id=conversation_id)
    service.ensure_owner(conversation, agent.subject, is_admin="admin" in agent.roles)
    previous_team = conversation.team
    notice = await service.transfer(
        session=session, settings=resources.settings, conversation=conversation, team=body.team
    )
    await session.commit()
    await conversation_service.enqueue_delivery(
        queues=resources.queues, conversation_id=conversation.id, message_ids=[notice.id]
    )
    # Agents freed up in the old team, a new waiter in the new one: both lines changed.
    await _announce_positions(resources, previous_team)
    if body.team != previous_team:
        await _announce_positions(resources, body.team)
    return _state(conversation)


@router.post("/conversations/{conversation_id}/resolve", response_model=ConversationState)
async def resolve(
    conversation_id: uuid.UUID, agent: AgentDep, session: SessionDep, resources: ResourcesDep
) -> ConversationState:
    """Close the attendance; the next citizen message goes to the bot again."""
    conversation = await service.get_conversation(session=session, conversation_id=conversation_id)
    service.ensure_owner(conversation, agent.subject, is_admin="admin" in agent.roles)
    notice = await service.resolve(session=session, conversation=conversation)
    await session.commit()
    await conversation_service.enqueue_delivery(
        queues=resources.queues, conversation_id=conversation.id, message_ids=[notice.id]
    )
    await _announce_positions(resources, conversation.team)  # one agent fewer busy
    return _state(conversation)
