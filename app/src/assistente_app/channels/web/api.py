"""The web contract: REST + WebSocket conversations for the widget and any client that speaks it
(the court's mobile app). A conversation token gives access to one conversation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    Header,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
    status,
)

from assistente_app.api.deps import BearerDep, ReadSessionDep, ResourcesDep, SessionDep
from assistente_app.channels import ingest
from assistente_app.channels.base import ensure_enabled, settings_as, settings_dependency
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
from assistente_app.conversations.schemas import MAX_SEQ, MessageList
from assistente_app.core import metrics
from assistente_app.core.errors import AppError, error_body
from assistente_app.core.ratelimit import enforce_rate_limit
from assistente_app.realtime.hub import RESYNC, REVOKED_EVENT
from assistente_app.runtime import Resources

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])
MESSAGES_ROUTE = "/api/v1/conversations/{conversation_id}/messages"
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
    metrics.message_channel.set(conversation.channel)
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
    conversation_id: uuid.UUID,
    token: BearerDep,
    session: ReadSessionDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Only messages after this seq")] = 0,
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


# WebSocket close codes (4xxx: ours, mirroring HTTP; 1xxx: RFC 6455).
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_NO_TOKEN = 4401
CLOSE_FORBIDDEN = 4403


@dataclass
class OpenSockets:
    """This process's open conversation sockets, to bound them (each costs ~40 KiB)."""

    total: int = 0
    per_conversation: Counter[uuid.UUID] = field(default_factory=Counter)

    @contextlib.contextmanager
    def holding(self, conversation_id: uuid.UUID) -> Iterator[None]:
        self.total += 1
        self.per_conversation[conversation_id] += 1
        metrics.WEBSOCKETS_OPEN.inc()
        try:
            yield
        finally:
            self.total -= 1
            self.per_conversation[conversation_id] -= 1
            if self.per_conversation[conversation_id] <= 0:
                del self.per_conversation[conversation_id]
            metrics.WEBSOCKETS_OPEN.dec()


def _open_sockets(websocket: WebSocket) -> OpenSockets:
    state = websocket.app.state
    if not hasattr(state, "open_sockets"):
        state.open_sockets = OpenSockets()
    sockets: OpenSockets = state.open_sockets
    return sockets


async def _close(websocket: WebSocket, code: int, error: str, message: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_json(error_body(error, message))
        await websocket.close(code=code)


async def _token_is_valid(resources: Resources, conversation_id: uuid.UUID, token: str) -> bool:
    async with resources.db.read_sessions() as session:
        try:
            await service.authorize(session=session, conversation_id=conversation_id, token=token)
        except AppError:
            return False
    return True


async def _first_frame_token(websocket: WebSocket, settings: WebSettings) -> str | None:
    """The token of the first frame ``{"token": "..."}``; closes the socket when there is none.

    Browsers cannot set headers on a WebSocket, so the token comes in the first frame (which
    keeps it out of URLs and access logs). The socket is accepted for it, and gets a few seconds
    and one small text frame; anything else closes it."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout=settings.ws_auth_timeout_s)
    except TimeoutError:
        await _close(websocket, CLOSE_NO_TOKEN, "not_authenticated", "Envie o token da conversa.")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    raw = message.get("text")
    if raw is None:
        await _close(
            websocket,
            CLOSE_UNSUPPORTED_DATA,
            "unsupported_data",
            'Envie o token como texto JSON: {"token": "..."}.',
        )
        return None
    if len(raw) > settings.ws_max_frame_bytes:
        await _close(websocket, CLOSE_TOO_BIG, "payload_too_large", "Mensagem grande demais.")
        return None
    try:
        first = json.loads(raw)
        token = str(first.get("token") or "") if isinstance(first, dict) else ""
    except (ValueError, RecursionError):
        token = ""
    if not token:
        await _close(websocket, CLOSE_NO_TOKEN, "not_authenticated", "Envie o token da conversa.")
        return None
    return token


@router.websocket("/{conversation_id}/ws")
async def conversation_ws(websocket: WebSocket, conversation_id: uuid.UUID) -> None:
    """Pushes ``{"type": "messages", "messages": [...]}`` events with bot and agent replies.

    Authenticate with ``Authorization: Bearer <token>`` (checked before the handshake: a wrong
    token gets HTTP 403) or a first frame ``{"token": "..."}`` within ``ws_auth_timeout_s``.
    The socket closes with 4403 once its token stops being valid (LGPD erasure).
    """
    resources: Resources = websocket.app.state.resources
    settings = settings_as(resources.settings, WebSettings)
    sockets = _open_sockets(websocket)
    header = websocket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token and not await _token_is_valid(resources, conversation_id, token):
        await websocket.close(code=CLOSE_FORBIDDEN)  # before accept: the handshake gets 403
        return
    await websocket.accept()
    if sockets.total >= settings.ws_max_connections:
        await _close(
            websocket,
            CLOSE_TRY_AGAIN_LATER,
            "service_unavailable",
            "Muitas conexões abertas. Tente novamente em instantes.",
        )
        return
    with sockets.holding(conversation_id):
        if not token:
            token = await _first_frame_token(websocket, settings) or ""
            if not token:
                return
            if not await _token_is_valid(resources, conversation_id, token):
                await _close(
                    websocket, CLOSE_FORBIDDEN, "forbidden", "Token não dá acesso a esta conversa."
                )
                return
        if sockets.per_conversation[conversation_id] > settings.ws_max_per_conversation:
            await _close(
                websocket,
                CLOSE_POLICY,
                "too_many_connections",
                "Esta conversa já está aberta em muitas janelas.",
            )
            return
        with contextlib.suppress(WebSocketDisconnect):
            await _serve(websocket, resources, settings, conversation_id, token)


async def _serve(
    websocket: WebSocket,
    resources: Resources,
    settings: WebSettings,
    conversation_id: uuid.UUID,
    token: str,
) -> None:
    assert resources.hub is not None
    async with resources.hub.subscribe(str(conversation_id)) as events:
        # Everything up to here is in the history the client loads; later replies come as
        # events, or from a catch-up read when the hub says events may have been lost.
        seen_seq = await service.latest_seq(
            db=resources.db.raw_writer, conversation_id=conversation_id
        )
        await websocket.send_json({"type": "ready", "conversation_id": str(conversation_id)})
        receiver = asyncio.create_task(_drain_client(websocket, settings))
        try:
            while not receiver.done():
                getter = asyncio.create_task(events.get())
                done, _ = await asyncio.wait(
                    {getter, receiver},
                    timeout=settings.ws_reauth_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if getter not in done:
                    getter.cancel()
                    if receiver.done():
                        break
                    if not await _token_is_valid(resources, conversation_id, token):
                        await _close(websocket, CLOSE_FORBIDDEN, "forbidden", "Conversa encerrada.")
                        break
                    continue
                event = getter.result()
                if event.get("type") == REVOKED_EVENT:
                    # The conversation was erased: its token no longer gives access to anything.
                    await _close(websocket, CLOSE_FORBIDDEN, "forbidden", "Conversa encerrada.")
                    break
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


async def _drain_client(websocket: WebSocket, settings: WebSettings) -> None:
    """Answer pings, refuse binary or oversized frames, and notice when the client goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None:
            await _close(
                websocket, CLOSE_UNSUPPORTED_DATA, "unsupported_data", "Envie apenas texto JSON."
            )
            return
        if len(raw) > settings.ws_max_frame_bytes:
            await _close(websocket, CLOSE_TOO_BIG, "payload_too_large", "Mensagem grande demais.")
            return
        with contextlib.suppress(ValueError, AttributeError, RecursionError):
            if json.loads(raw).get("type") == "ping":
                await websocket.send_json({"type": "pong"})
