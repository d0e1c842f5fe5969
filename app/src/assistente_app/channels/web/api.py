"""The web contract: REST + WebSocket conversations for the widget and any client that speaks it
(the court's mobile app). A conversation token gives access to one conversation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, WebSocket, WebSocketDisconnect, status

from assistente_app.api.deps import BearerDep, ReadSessionDep, ResourcesDep, SessionDep
from assistente_app.channels import ingest
from assistente_app.channels.base import ensure_enabled, settings_dependency
from assistente_app.channels.web.schemas import (
    ConversationCreate,
    ConversationCreated,
    MessageAccepted,
    MessageCreate,
    QueueLeft,
)
from assistente_app.channels.web.settings import WebSettings
from assistente_app.conversations import models as m
from assistente_app.conversations import service
from assistente_app.conversations.schemas import MessageList
from assistente_app.core import metrics
from assistente_app.core.errors import AppError, error_body
from assistente_app.core.ratelimit import enforce_rate_limit
from assistente_app.realtime.hub import RESYNC
from assistente_app.runtime import Resources

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])
WebSettingsDep = Annotated[WebSettings, Depends(settings_dependency(WebSettings))]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Token ausente"},
    403: {"description": "Token não pertence a esta conversa"},
    429: {"description": "Limite de requisições excedido"},
}


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ConversationCreated, responses=ERRORS
)
async def create_conversation(
    body: ConversationCreate,
    request: Request,
    resources: ResourcesDep,
    settings: WebSettingsDep,
    session: SessionDep,
) -> ConversationCreated:
    """Open a conversation: issues the protocol number and the conversation's bearer token."""
    ensure_enabled(request, body.channel)
    await enforce_rate_limit(
        redis=resources.redis,
        prefix=resources.settings.queue_prefix,
        scope="open",
        sender=client_ip(request),
        limit=settings.conversation_create_per_minute,
    )
    conversation, token = await service.create_conversation(
        session=session, settings=resources.settings, channel=body.channel
    )
    await session.commit()
    return ConversationCreated(
        id=conversation.id,
        protocol=conversation.protocol,
        token=token,
        channel=body.channel,
        created_at=conversation.created_at,
    )


@router.post(
    "/{conversation_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageAccepted,
    responses={**ERRORS, 503: {"description": "Fila cheia ou indisponível"}},
)
async def post_message(
    conversation_id: uuid.UUID,
    body: MessageCreate,
    request: Request,
    token: BearerDep,
    resources: ResourcesDep,
    idempotency_key: Annotated[str | None, Header(max_length=120)] = None,
) -> MessageAccepted:
    """Accept a citizen message: answered once it is stored in PostgreSQL and queued in Redis."""
    conversation = await service.authorize_fast(
        db=resources.db.raw_writer, conversation_id=conversation_id, token=token
    )
    ensure_enabled(request, conversation.channel)
    await enforce_rate_limit(
        redis=resources.redis,
        prefix=resources.settings.queue_prefix,
        scope="msg",
        sender=str(conversation.id),
        limit=resources.settings.rate_limit_per_minute,
    )
    key = f"web:{conversation.id}:{idempotency_key}" if idempotency_key else None
    if conversation.status in (m.QUEUED, m.HUMAN):
        # A person has the conversation: the message goes to the clerk, and "sair" leaves the
        # queue. Rare and many-sided, so the ORM path.
        async with resources.db.write_sessions() as session:
            owned = await service.authorize(
                session=session, conversation_id=conversation_id, token=token
            )
            message, duplicate = await service.accept_user_message(
                session=session,
                queues=resources.queues,
                conversation=owned,
                text_=body.text,
                idempotency_key=key,
                events=resources.events,
            )
            if not duplicate:
                await ingest.leave_queue_if_asked(
                    resources=resources, session=session, conversation=owned, text=body.text
                )
        return MessageAccepted(
            id=message.id, protocol=owned.protocol, status=message.status, duplicate=duplicate
        )
    message_id, status, duplicate = await service.accept_message_fast(
        db=resources.db.raw_writer,
        queues=resources.queues,
        conversation=conversation,
        text_=body.text,
        idempotency_key=key,
    )
    return MessageAccepted(
        id=message_id, protocol=conversation.protocol, status=status, duplicate=duplicate
    )


@router.post(
    "/{conversation_id}/leave-queue",
    response_model=QueueLeft,
    responses={**ERRORS, 409: {"description": "A conversa não está na fila"}},
)
async def leave_queue(
    conversation_id: uuid.UUID, token: BearerDep, resources: ResourcesDep, session: SessionDep
) -> QueueLeft:
    """The citizen stops waiting for a person: out of the level-2 queue, back to the bot, with
    the same protocol."""
    conversation = await service.authorize(
        session=session, conversation_id=conversation_id, token=token
    )
    await ingest.leave_queue(resources=resources, session=session, conversation=conversation)
    return QueueLeft(protocol=conversation.protocol, status=conversation.status)


@router.get("/{conversation_id}/messages", response_model=MessageList, responses=ERRORS)
async def get_messages(
    conversation_id: uuid.UUID, token: BearerDep, session: ReadSessionDep, after: int = 0
) -> MessageList:
    """History (user, bot, agent and system messages) in order; ``after`` pages by ``seq``."""
    conversation = await service.authorize(
        session=session, conversation_id=conversation_id, token=token
    )
    return MessageList(
        conversation_id=conversation.id,
        protocol=conversation.protocol,
        status=conversation.status,
        messages=await service.list_messages(
            session=session, conversation_id=conversation.id, after_seq=after
        ),
    )


async def _authenticate_ws(
    websocket: WebSocket, resources: Resources, conversation_id: uuid.UUID
) -> bool:
    header = websocket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token:
        # Browsers cannot set headers on a WebSocket: the first frame carries the token, which
        # keeps it out of URLs and access logs.
        try:
            first = await asyncio.wait_for(websocket.receive_text(), timeout=10)
            token = str(json.loads(first).get("token", ""))
        except (TimeoutError, ValueError, AttributeError):
            token = ""
        except WebSocketDisconnect:
            return False
    if not token:
        await websocket.send_json(error_body("not_authenticated", "Envie o token da conversa."))
        await websocket.close(code=4401)
        return False
    async with resources.db.read_sessions() as session:
        try:
            await service.authorize(session=session, conversation_id=conversation_id, token=token)
        except AppError as exc:
            await websocket.send_json(error_body(exc.code, exc.message))
            await websocket.close(code=4403)
            return False
    return True


@router.websocket("/{conversation_id}/ws")
async def conversation_ws(websocket: WebSocket, conversation_id: uuid.UUID) -> None:
    """Pushes ``{"type": "messages", "messages": [...]}`` events with bot and agent replies.

    Authenticate with ``Authorization: Bearer <token>`` or a first frame ``{"token": "..."}``.
    """
    resources: Resources = websocket.app.state.resources
    await websocket.accept()
    if not await _authenticate_ws(websocket, resources, conversation_id):
        return
    assert resources.hub is not None
    metrics.WEBSOCKETS.inc()
    try:
        async with resources.hub.subscribe(str(conversation_id)) as events:
            # Everything up to here is in the history the client loads; later replies come as
            # events, or from a catch-up read when the hub says events may have been lost.
            seen_seq = await service.latest_seq(
                db=resources.db.raw_writer, conversation_id=conversation_id
            )
            await websocket.send_json({"type": "ready", "conversation_id": str(conversation_id)})
            receiver = asyncio.create_task(_drain_client(websocket))
            try:
                while not receiver.done():
                    getter = asyncio.create_task(events.get())
                    done, _ = await asyncio.wait(
                        {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        continue
                    event = getter.result()
                    if event.get("type") == RESYNC:
                        event = await _missed_replies(resources, conversation_id, seen_seq)
                        if not event["messages"]:
                            continue
                    for message in event.get("messages", ()):
                        seen_seq = max(seen_seq, int(message.get("seq", 0)))
                    await websocket.send_json(event)
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await receiver
    except WebSocketDisconnect:
        pass
    finally:
        metrics.WEBSOCKETS.dec()


async def _missed_replies(
    resources: Resources, conversation_id: uuid.UUID, after_seq: int
) -> dict[str, Any]:
    missed = await service.replies_since(
        db=resources.db.raw_writer, conversation_id=conversation_id, after_seq=after_seq
    )
    return {
        "type": "messages",
        "conversation_id": str(conversation_id),
        "messages": [message.model_dump(mode="json") for message in missed],
    }


async def _drain_client(websocket: WebSocket) -> None:
    """Answer pings and notice when the client goes away."""
    while True:
        raw = await websocket.receive_text()
        with contextlib.suppress(ValueError, AttributeError):
            if json.loads(raw).get("type") == "ping":
                await websocket.send_json({"type": "pong"})
