"""Agent API (OIDC role ``agent``, or a team role that includes it): the live board over a
WebSocket, and queue, claim, reply, transfer and resolve over REST. A clerk sees and takes the
conversations of their teams; supervisors and admins see every team."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Annotated, Any, TypeGuard

from assistente_contract import TEAM_LABELS, TEAMS, Team
from fastapi import APIRouter, FastAPI, Query, WebSocket, WebSocketDisconnect, status

from assistente_app.api.deps import (
    ClerkDep,
    ReadSessionDep,
    ResourcesDep,
    SessionDep,
    clerk_from,
)
from assistente_app.api.openapi import ErrorBody
from assistente_app.auth.oidc import Clerk
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.conversations.schemas import MAX_SEQ, MessageOut
from assistente_app.core import metrics
from assistente_app.core.errors import AppError, ForbiddenError, error_body
from assistente_app.escalation import notify, service
from assistente_app.escalation.board import HEARTBEAT_S, LiveBoard, Presence, read_board
from assistente_app.escalation.catalog import CANNED_ANSWERS, RESOLUTION_CODES
from assistente_app.escalation.schemas import (
    AgentReply,
    CannedAnswerOut,
    Catalog,
    ClerkOut,
    ConversationDetail,
    ConversationState,
    Option,
    QueueItem,
    ResolveRequest,
    TransferRequest,
)
from assistente_app.realtime.hub import RESYNC
from assistente_app.runtime import Resources

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/agent", tags=["agent"])
# The agent's actions race each other (two clerks, one conversation): the loser hears 409.
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "A conversa não está no estado para esta ação"}
}

# The console sends its token at once, then small JSON frames (watch, ping, a refreshed token):
# a socket that stays silent or sends anything else is closed (binary 1003, too big 1009).
CLERK_AUTH_TIMEOUT_S = 5.0
CLERK_FRAME_BYTES = 16 * 1024
# A token may be a little past its `exp` while the console refreshes it.
EXPIRY_GRACE_S = 5.0


def _state(conversation: m.Conversation) -> ConversationState:
    return ConversationState(
        conversation_id=conversation.id,
        protocol=conversation.protocol,
        status=conversation.status,
        team=conversation.team,
        agent_sub=conversation.agent_sub,
    )


def _is_seq(value: Any) -> TypeGuard[int]:
    """A message sequence number a client may send: a JSON integer the database can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ


def _ensure_visible(clerk: Clerk, conversation: m.Conversation) -> None:
    service.ensure_can_read(conversation, clerk)


def _claimable_teams(clerk: Clerk) -> frozenset[str] | None:
    return None if clerk.supervisor or clerk.admin else clerk.teams


@router.get("/me", response_model=ClerkOut)
async def me(clerk: ClerkDep) -> ClerkOut:
    """Who is signed in, and which queues they work."""
    return ClerkOut(
        subject=clerk.subject,
        name=clerk.name,
        teams=sorted(clerk.teams),
        supervisor=clerk.supervisor,
        admin=clerk.admin,
    )


@router.get("/catalog", response_model=Catalog)
async def catalog(_clerk: ClerkDep) -> Catalog:
    """Teams to transfer to, canned answers, resolution codes."""
    return Catalog(
        teams=[Option(id=team, label=TEAM_LABELS[team]) for team in TEAMS],
        canned_answers=[
            CannedAnswerOut(id=a.id, title=a.title, text=a.text) for a in CANNED_ANSWERS
        ],
        resolution_codes=[Option(id=k, label=v) for k, v in RESOLUTION_CODES.items()],
    )


@router.get("/queue", response_model=list[QueueItem])
async def list_queue(
    clerk: ClerkDep, session: ReadSessionDep, team: Annotated[Team | None, Query()] = None
) -> list[QueueItem]:
    """Conversations waiting for a human in the clerk's teams, oldest first."""
    rows = await service.list_queue(session=session, team=team)
    positions: dict[str | None, int] = {}
    items = []
    for row in rows:
        positions[row.team] = positions.get(row.team, 0) + 1
        if not clerk.sees_team(row.team):
            continue
        items.append(
            QueueItem(
                conversation_id=row.id,
                protocol=row.protocol,
                channel=row.channel,
                team=row.team,
                reason=row.escalation_reason,
                queued_at=row.queued_at,
                position=positions[row.team],
                summary=row.summary or {},
            )
        )
    return items


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def conversation_detail(
    conversation_id: uuid.UUID, clerk: ClerkDep, session: ReadSessionDep
) -> ConversationDetail:
    """The whole history of a conversation with the bot's summary."""
    conversation = await service.get_conversation(session=session, conversation_id=conversation_id)
    _ensure_visible(clerk, conversation)
    return ConversationDetail(
        **_state(conversation).model_dump(),
        channel=conversation.channel,
        reason=conversation.escalation_reason,
        queued_at=conversation.queued_at,
        claimed_at=conversation.claimed_at,
        resolution_code=conversation.resolution_code,
        summary=conversation.summary or {},
        messages=await conversation_service.list_messages(
            session=session, conversation_id=conversation.id
        ),
    )


@router.get("/conversations/{conversation_id}/messages", response_model=ConversationDetail)
async def conversation_history(
    conversation_id: uuid.UUID, clerk: ClerkDep, session: ReadSessionDep
) -> ConversationDetail:
    """Same as ``GET /conversations/{id}`` (kept for API clients written before it)."""
    return await conversation_detail(conversation_id, clerk, session)


@router.post(
    "/conversations/{conversation_id}/claim", response_model=ConversationState, responses=CONFLICT
)
async def claim(
    conversation_id: uuid.UUID, clerk: ClerkDep, session: SessionDep, resources: ResourcesDep
) -> ConversationState:
    """Take a queued conversation; from now on the bot stays silent in it. When two clerks take
    the same conversation at once, one gets it and the other a 409."""
    conversation, notice = await service.claim(
        session=session,
        conversation_id=conversation_id,
        agent_sub=clerk.subject,
        agent_name=clerk.name,
        teams=_claimable_teams(clerk),
    )
    await session.commit()
    service.record_claim(conversation)
    await notify.queue_changed(
        resources, conversation_id=conversation.id, notices=[notice.id], teams=[conversation.team]
    )
    return _state(conversation)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CONFLICT,
)
async def reply(
    conversation_id: uuid.UUID,
    body: AgentReply,
    clerk: ClerkDep,
    session: SessionDep,
    resources: ResourcesDep,
) -> MessageOut:
    """Answer the citizen; delivered on the citizen's channel by the worker."""
    conversation = await service.get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    service.ensure_owner(conversation, clerk.subject, is_admin=clerk.admin)
    message = await conversation_service.add_message(
        session=session,
        conversation_id=conversation.id,
        role="agent",
        text_=body.text,
        payload={"agent_name": clerk.name},
        agent_sub=clerk.subject,
    )
    conversation.last_activity_at = conversation_service.now_utc()
    await session.commit()
    await conversation_service.enqueue_delivery(
        queues=resources.queues, conversation_id=conversation.id, message_ids=[message.id]
    )
    return MessageOut.model_validate(message)


@router.post(
    "/conversations/{conversation_id}/transfer",
    response_model=ConversationState,
    responses=CONFLICT,
)
async def transfer(
    conversation_id: uuid.UUID,
    body: TransferRequest,
    clerk: ClerkDep,
    session: SessionDep,
    resources: ResourcesDep,
) -> ConversationState:
    """Send the conversation to another team's queue, keeping its place in line."""
    conversation = await service.get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    service.ensure_owner(conversation, clerk.subject, is_admin=clerk.admin)
    previous_team = conversation.team
    notice = await service.transfer(
        session=session, settings=resources.settings, conversation=conversation, team=body.team
    )
    await session.commit()
    # Agents freed up in the old team, a new waiter in the new one: both lines changed.
    await notify.queue_changed(
        resources,
        conversation_id=conversation.id,
        notices=[notice.id],
        teams=[previous_team, body.team],
    )
    return _state(conversation)


@router.post(
    "/conversations/{conversation_id}/resolve", response_model=ConversationState, responses=CONFLICT
)
async def resolve(
    conversation_id: uuid.UUID,
    body: ResolveRequest,
    clerk: ClerkDep,
    session: SessionDep,
    resources: ResourcesDep,
) -> ConversationState:
    """Close the attendance with a resolution code; the next citizen message goes to the bot."""
    conversation = await service.get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    service.ensure_owner(conversation, clerk.subject, is_admin=clerk.admin)
    notice = await service.resolve(session=session, conversation=conversation, code=body.code)
    await session.commit()
    service.record_closure(team=conversation.team, code=body.code)
    await notify.queue_changed(
        resources, conversation_id=conversation.id, notices=[notice.id], teams=[conversation.team]
    )
    return _state(conversation)


@router.get("/supervision")
async def supervision(
    clerk: ClerkDep, session: ReadSessionDep, resources: ResourcesDep
) -> dict[str, Any]:
    """Queues by team, waits, clerks online and conversations closed today (supervisors)."""
    if not (clerk.supervisor or clerk.admin):
        raise ForbiddenError("Acesso restrito à supervisão.")
    online = await Presence(resources.redis, resources.settings.queue_prefix).online()
    board = await read_board(session=session, settings=resources.settings, online=online)
    return board.supervision()


# --- the live board over a WebSocket ----------------------------------------------------------


def _hub(resources: Resources) -> Any:
    assert resources.hub is not None, "the event hub runs in the API process"
    return resources.hub


async def live_board(app: FastAPI, resources: Resources) -> LiveBoard:
    """This replica's board, started with its first clerk (stopped by ``stop_live_board``)."""
    board: LiveBoard | None = getattr(app.state, "live_board", None)
    if board is None:
        board = LiveBoard(
            db=resources.db,
            settings=resources.settings,
            hub=_hub(resources),
            presence=Presence(resources.redis, resources.settings.queue_prefix),
        )
        app.state.live_board = board
    await board.start()
    return board


async def stop_live_board(app: FastAPI) -> None:
    board: LiveBoard | None = getattr(app.state, "live_board", None)
    if board is not None:
        await board.stop()


class ClerkSocket:
    """One console connected: pushes its share of the board, the conversation it has open, and
    closes when its token expires without a refresh."""

    def __init__(self, websocket: WebSocket, resources: Resources, clerk: Clerk) -> None:
        self.websocket = websocket
        self.resources = resources
        self.clerk = clerk
        self._send_lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    async def send(self, data: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_json(data)

    def clerk_json(self) -> dict[str, Any]:
        return {
            "subject": self.clerk.subject,
            "name": self.clerk.name,
            "teams": sorted(self.clerk.teams),
            "supervisor": self.clerk.supervisor,
            "admin": self.clerk.admin,
        }

    async def push_board(self, board: LiveBoard) -> None:
        current = await board.current()
        await self.send(current.for_clerk(self.clerk))
        async for latest in board.changes(current.version):
            await self.send(latest.for_clerk(self.clerk))

    async def keep_alive(self, presence: Presence) -> None:
        while True:
            await presence.heartbeat(self.clerk)
            expires_at = self.clerk.principal.expires_at
            if expires_at is not None and time.time() > expires_at + EXPIRY_GRACE_S:
                await self.send(error_body("session_expired", "Sua sessão expirou."))
                await self.websocket.close(code=4401)
                return
            await asyncio.sleep(min(HEARTBEAT_S, 5.0))

    async def receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            raw = message.get("text")
            if raw is None or len(raw) > CLERK_FRAME_BYTES:  # binary or oversized: not ours
                await self.send(error_body("unsupported_data", "Envie apenas texto JSON."))
                await self.websocket.close(code=1003 if raw is None else 1009)
                return
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(data, dict):
                continue
            kind = data.get("type")
            if kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "token":
                await self._refresh_token(str(data.get("token", "")))
            elif kind == "watch":
                after_seq = data.get("after_seq")
                await self._watch_conversation(
                    str(data.get("conversation_id", "")),
                    after_seq if _is_seq(after_seq) else None,
                )

    async def _refresh_token(self, token: str) -> None:
        assert self.resources.verifier is not None
        try:
            principal = await self.resources.verifier.verify(token)
        except AppError as exc:
            await self.send(error_body(exc.code, exc.message))
            return
        if principal.subject != self.clerk.subject:
            await self.send(error_body("forbidden", "O token é de outra pessoa."))
            return
        self.clerk = clerk_from(principal, self.resources.settings)
        await self.send({"type": "hello", "clerk": self.clerk_json()})

    async def _watch_conversation(self, raw_id: str, after_seq: int | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        try:
            conversation_id = uuid.UUID(raw_id)
        except ValueError:
            return
        async with self.resources.db.read_sessions() as session:
            conversation = await session.get(m.Conversation, conversation_id)
            if conversation is None:
                return
            try:
                _ensure_visible(self.clerk, conversation)
            except AppError as exc:
                await self.send(error_body(exc.code, exc.message))
                return
        self._watch = asyncio.create_task(self._forward(str(conversation_id), after_seq))

    async def _forward(self, conversation_id: str, after_seq: int | None) -> None:
        async with _hub(self.resources).subscribe(conversation_id) as events:
            # The console loads the history itself, then watches from the last message it has
            # (`after_seq`): what was stored in between is read from the primary once
            # subscribed, so nothing falls between the history and the events. From here on the
            # clerk gets every message as an event, or from the primary when the hub says events
            # may have been lost. A message read from the primary may also come as an event
            # (stored before the read, published after): `read_here` keeps it from going twice.
            read_here: set[str] = set()

            async def send_from_primary(after: int) -> int:
                missed = await self._missed(conversation_id, after)
                messages = missed["messages"]
                read_here.update(str(message["id"]) for message in messages)
                if messages:
                    await self.send(missed)
                return max([after, *(int(message["seq"]) for message in messages)])

            if after_seq is None:
                seen_seq = await conversation_service.latest_seq(
                    db=self.resources.db.raw_writer, conversation_id=uuid.UUID(conversation_id)
                )
            else:
                seen_seq = await send_from_primary(after_seq)
            while True:
                event = await events.get()
                if event.get("type") == RESYNC:
                    seen_seq = await send_from_primary(seen_seq)
                    continue
                fresh = [
                    message
                    for message in event.get("messages") or []
                    if str(message.get("id")) not in read_here
                ]
                if event.get("type") != "messages" or not fresh:
                    continue
                for message in fresh:
                    seen_seq = max(seen_seq, int(message.get("seq", 0)))
                await self.send({**event, "messages": fresh})

    async def _missed(self, conversation_id: str, after_seq: int) -> dict[str, Any]:
        async with self.resources.db.write_sessions() as session:
            missed = await conversation_service.list_messages(
                session=session, conversation_id=uuid.UUID(conversation_id), after_seq=after_seq
            )
        return {
            "type": "messages",
            "conversation_id": conversation_id,
            "messages": [message.model_dump(mode="json") for message in missed],
        }

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch


async def _authenticate_clerk(websocket: WebSocket, resources: Resources) -> Clerk | None:
    if resources.verifier is None:
        await websocket.send_json(
            error_body("service_unavailable", "Autenticação de atendentes não configurada.")
        )
        await websocket.close(code=4503)
        return None
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout=CLERK_AUTH_TIMEOUT_S)
        raw = message.get("text") or ""
        first = json.loads(raw) if len(raw) <= CLERK_FRAME_BYTES else None
        token = str(first.get("token", "")) if isinstance(first, dict) else ""
    except (TimeoutError, ValueError, RecursionError):
        token = ""
    if not token:
        await websocket.send_json(error_body("not_authenticated", "Envie o token de acesso."))
        await websocket.close(code=4401)
        return None
    try:
        principal = await resources.verifier.verify(token)
    except AppError as exc:
        await websocket.send_json(error_body(exc.code, exc.message))
        await websocket.close(code=4401)
        return None
    clerk = clerk_from(principal, resources.settings)
    if not ({"agent", "admin"} & principal.roles):
        await websocket.send_json(error_body("forbidden", "Acesso restrito a atendentes."))
        await websocket.close(code=4403)
        return None
    return clerk


@router.websocket("/ws")
async def clerk_ws(websocket: WebSocket) -> None:
    """The console's live feed. First frame ``{"token": <access token>}``; then the server pushes
    ``{"type": "board", "queues", "mine", "supervision"}`` whenever a queue changes, and the
    messages of the conversation named by ``{"type": "watch", "conversation_id"}``. Send
    ``{"type": "token", "token"}`` after each refresh; an expired token closes with 4401."""
    resources: Resources = websocket.app.state.resources
    await websocket.accept()
    try:
        clerk = await _authenticate_clerk(websocket, resources)
    except WebSocketDisconnect:
        return
    if clerk is None:
        return
    board = await live_board(websocket.app, resources)
    socket = ClerkSocket(websocket, resources, clerk)
    await board.presence.heartbeat(clerk)
    await resources.events.queues_changed()  # one clerk more online
    tasks: list[asyncio.Task[None]] = []
    metrics.WEBSOCKETS_OPEN.inc()
    try:
        await socket.send({"type": "hello", "clerk": socket.clerk_json()})
        tasks = [
            asyncio.create_task(socket.push_board(board)),
            asyncio.create_task(socket.keep_alive(board.presence)),
            asyncio.create_task(socket.receive()),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and isinstance(task.exception(), Exception):
                error = task.exception()
                if not isinstance(error, WebSocketDisconnect | RuntimeError):
                    log.error("clerk socket failed", exc_info=error)
    except WebSocketDisconnect:
        pass
    finally:
        metrics.WEBSOCKETS_OPEN.dec()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await socket.close()
        await board.presence.leave(socket.clerk.subject)
        await resources.events.queues_changed()  # one clerk fewer online
