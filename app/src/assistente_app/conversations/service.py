"""Conversation and message use cases shared by every channel."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.auth.tokens import hash_token, new_token, token_matches
from assistente_app.conversations import models as m
from assistente_app.conversations import repository
from assistente_app.conversations.protocol_numbers import format_protocol
from assistente_app.conversations.repository import ConversationAuth
from assistente_app.conversations.schemas import MessageOut
from assistente_app.core import metrics
from assistente_app.core.db import UNAVAILABLE_ERRORS, RawPool
from assistente_app.core.errors import ForbiddenError, ServiceUnavailableError
from assistente_app.core.logging import bind_conversation
from assistente_app.core.settings import CoreSettings
from assistente_app.queue.streams import Queues, StreamQueue
from assistente_app.realtime.hub import EventPublisher

log = logging.getLogger(__name__)

# A channel sender (WhatsApp number, Telegram chat) starts a new attendance after this silence.
CHANNEL_CONVERSATION_IDLE = dt.timedelta(hours=24)
ACTIVITY_PRECISION = dt.timedelta(minutes=1)


class QueueUnavailableError(ServiceUnavailableError):
    """The message is stored but could not be queued: retrying is safe and needed."""

    code = "queue_unavailable"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def next_protocol(*, session: AsyncSession, settings: CoreSettings) -> str:
    sequence = int((await session.execute(text("SELECT nextval('protocol_seq')"))).scalar_one())
    return format_protocol(day=now_utc().astimezone(settings.tz).date(), sequence=sequence)


async def create_conversation(
    *, session: AsyncSession, settings: CoreSettings, channel: str, external_id: str | None = None
) -> tuple[m.Conversation, str]:
    """Open a conversation and issue its protocol. Returns it with the clear-text token."""
    token = new_token()
    conversation = m.Conversation(
        id=uuid.uuid4(),
        protocol=await next_protocol(session=session, settings=settings),
        channel=channel,
        external_id=external_id,
        token_hash=hash_token(token),
        status=m.BOT,
    )
    session.add(conversation)
    await session.flush()
    log.info(
        "conversation opened", extra={"channel": channel, "conversation_id": str(conversation.id)}
    )
    return conversation, token


async def conversation_for_sender(
    *, session: AsyncSession, settings: CoreSettings, channel: str, external_id: str
) -> m.Conversation:
    """The open conversation of a channel sender, or a new one (with a new protocol)."""
    # Serialise concurrent webhook deliveries of the same sender inside this transaction.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"{channel}:{external_id}"},
    )
    current = (
        await session.execute(
            select(m.Conversation)
            .where(m.Conversation.channel == channel, m.Conversation.external_id == external_id)
            .order_by(m.Conversation.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if (
        current is not None
        and current.status != m.RESOLVED
        and now_utc() - current.last_activity_at < CHANNEL_CONVERSATION_IDLE
    ):
        conversation = current
    else:
        conversation, _token = await create_conversation(
            session=session, settings=settings, channel=channel, external_id=external_id
        )
    bind_conversation(protocol=conversation.protocol, conversation_id=conversation.id)
    return conversation


async def authorize(
    *, session: AsyncSession, conversation_id: uuid.UUID, token: str
) -> m.Conversation:
    """The conversation if ``token`` is its own. Unknown id and wrong token look the same."""
    conversation = await session.get(m.Conversation, conversation_id)
    if conversation is None or not token_matches(token, conversation.token_hash):
        raise ForbiddenError("Token não dá acesso a esta conversa.")
    bind_conversation(protocol=conversation.protocol, conversation_id=conversation.id)
    return conversation


DATABASE_UNAVAILABLE = (
    "O atendimento está temporariamente indisponível. Tente novamente em instantes."
)


async def authorize_fast(
    *, db: RawPool, conversation_id: uuid.UUID, token: str
) -> ConversationAuth:
    """``authorize`` on the hot path (the web contract's POST): one statement, no ORM."""
    try:
        async with db.acquire() as connection:
            conversation = await repository.conversation_for_auth(connection, conversation_id)
    except UNAVAILABLE_ERRORS as error:
        raise ServiceUnavailableError(DATABASE_UNAVAILABLE, retry_after_s=5) from error
    if conversation is None or not token_matches(token, conversation.token_hash):
        raise ForbiddenError("Token não dá acesso a esta conversa.")
    bind_conversation(protocol=conversation.protocol, conversation_id=conversation.id)
    return conversation


async def accept_message_fast(
    *,
    db: RawPool,
    queues: Queues,
    conversation: ConversationAuth,
    text_: str,
    idempotency_key: str | None = None,
) -> tuple[uuid.UUID, str, bool]:
    """``accept_user_message`` on the hot path: the same rules (backpressure first, committed
    before queued, an idempotency key gives the stored message back and queues it again while
    it is unprocessed) in one statement. Returns ``(message id, status, duplicate)``."""
    for_agent = conversation.status in (m.QUEUED, m.HUMAN)
    queue = queues.inbound_for(str(conversation.id))
    if not for_agent:
        await queue.check_capacity()
    try:
        async with db.acquire() as connection:
            message_id, status, duplicate = await repository.insert_user_message(
                connection, conversation=conversation, text=text_, idempotency_key=idempotency_key
            )
    except UNAVAILABLE_ERRORS as error:
        raise ServiceUnavailableError(DATABASE_UNAVAILABLE, retry_after_s=5) from error
    if not duplicate:
        metrics.MESSAGES_ACCEPTED.labels(channel=conversation.channel).inc()
    if status == m.ACCEPTED:
        await _queue_stored(queue, message_id=message_id, conversation_id=conversation.id)
    return message_id, status, duplicate


async def _queue_stored(
    queue: StreamQueue, *, message_id: uuid.UUID, conversation_id: uuid.UUID
) -> None:
    try:
        await queue.add({"message_id": str(message_id), "conversation_id": str(conversation_id)})
    except Exception as exc:
        # Stored but not queued: the sweeper queues it later, and a retry with the same
        # idempotency key queues it now. Either way the client must hear "try again".
        log.warning(
            "message stored, queueing failed: %s",
            type(exc).__name__,
            extra={"message_id": str(message_id)},
        )
        raise QueueUnavailableError(
            "Sua mensagem foi registrada, mas a fila está indisponível. Tente novamente "
            "em instantes (com a mesma Idempotency-Key).",
            retry_after_s=5,
        ) from exc


async def latest_seq(*, db: RawPool, conversation_id: uuid.UUID) -> int:
    """The conversation's last message sequence number (0 when the database cannot say)."""
    try:
        async with db.acquire() as connection:
            return await repository.last_seq(connection, conversation_id)
    except UNAVAILABLE_ERRORS:
        return 0


async def replies_since(
    *, db: RawPool, conversation_id: uuid.UUID, after_seq: int
) -> list[MessageOut]:
    """Bot, agent and system messages after ``after_seq``, read on the primary (a socket that
    catches up must see what was just written); empty when the database cannot say."""
    try:
        async with db.acquire() as connection:
            return await repository.replies_after(connection, conversation_id, after_seq=after_seq)
    except UNAVAILABLE_ERRORS:
        log.warning(
            "could not read missed replies", extra={"conversation_id": str(conversation_id)}
        )
        return []


async def authorize_protocol(*, session: AsyncSession, protocol: str, token: str) -> m.Conversation:
    conversation = (
        await session.execute(select(m.Conversation).where(m.Conversation.protocol == protocol))
    ).scalar_one_or_none()
    if conversation is None or not token_matches(token, conversation.token_hash):
        raise ForbiddenError("Token não dá acesso a este protocolo.")
    return conversation


async def accept_user_message(
    *,
    session: AsyncSession,
    queues: Queues,
    conversation: m.Conversation,
    text_: str,
    idempotency_key: str | None = None,
    events: EventPublisher | None = None,
) -> tuple[m.Message, bool]:
    """Store the message durably, then queue it. Returns ``(message, duplicate)``.

    Backpressure is checked first (503, nothing stored). The row is committed before XADD: if
    Redis then fails, the caller answers 5xx but the message is already safe and the worker's
    sweeper queues it later. A retried delivery with the same
    idempotency key returns the stored message (queued again if it is still unprocessed; the
    worker ignores entries whose message was already processed).
    """
    if conversation.status == m.RESOLVED:
        conversation.status = m.BOT
        conversation.team = None
        conversation.agent_sub = None
    for_agent = conversation.status in (m.QUEUED, m.HUMAN)
    status = m.FOR_AGENT if for_agent else m.ACCEPTED
    if not for_agent:
        await queues.inbound_for(str(conversation.id)).check_capacity()
    message_id = uuid.uuid4()
    inserted = (
        await session.execute(
            insert(m.Message)
            .values(
                id=message_id,
                conversation_id=conversation.id,
                role="user",
                text=text_,
                status=status,
                idempotency_key=idempotency_key,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(m.Message)
        )
    ).scalar_one_or_none()
    duplicate = inserted is None
    if inserted is None:
        message = (
            await session.execute(
                select(m.Message).where(m.Message.idempotency_key == idempotency_key)
            )
        ).scalar_one()
    else:
        message = inserted
        now = now_utc()
        # Retention only needs day precision: skip the UPDATE on chatty conversations.
        if now - conversation.last_activity_at > ACTIVITY_PRECISION:
            conversation.last_activity_at = now
    await session.commit()
    if not duplicate:
        metrics.MESSAGES_ACCEPTED.labels(channel=conversation.channel).inc()
        if message.status == m.FOR_AGENT:
            # Answered by the clerk, not the bot: finished here for the reply SLO's count.
            metrics.TURNS.labels(channel=conversation.channel, outcome="human").inc()
    if message.status == m.ACCEPTED:
        await _queue_stored(
            queues.inbound_for(str(conversation.id)),
            message_id=message.id,
            conversation_id=conversation.id,
        )
    elif message.status == m.FOR_AGENT and not duplicate and events is not None:
        await announce_for_agent(events, conversation, message)
    return message, duplicate


async def announce_for_agent(
    events: EventPublisher, conversation: m.Conversation, message: m.Message
) -> None:
    """A citizen message kept for a person: the clerk who has the conversation open sees it."""
    await events.publish(
        {
            "type": "messages",
            "conversation_id": str(conversation.id),
            "status": conversation.status,
            "messages": [MessageOut.model_validate(message).model_dump(mode="json")],
        }
    )


async def add_message(
    *,
    session: AsyncSession,
    conversation_id: uuid.UUID,
    role: str,
    text_: str,
    payload: dict[str, object] | None = None,
    agent_sub: str | None = None,
) -> m.Message:
    message = m.Message(
        id=uuid.uuid4(),
        conversation_id=conversation_id,
        role=role,
        text=text_,
        payload=payload,
        status=m.STORED,
        agent_sub=agent_sub,
    )
    session.add(message)
    await session.flush()
    return message


async def enqueue_delivery(
    *, queues: Queues, conversation_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> None:
    """Hand replies to the worker, which pushes them to WebSockets and channel APIs."""
    if message_ids:
        await queues.outbound_for(str(conversation_id)).add(
            {
                "conversation_id": str(conversation_id),
                "message_ids": ",".join(str(i) for i in message_ids),
            }
        )


async def list_messages(
    *, session: AsyncSession, conversation_id: uuid.UUID, after_seq: int = 0, limit: int = 500
) -> list[MessageOut]:
    rows = (
        await session.execute(
            select(m.Message)
            .where(m.Message.conversation_id == conversation_id, m.Message.seq > after_seq)
            .order_by(m.Message.seq)
            .limit(limit)
        )
    ).scalars()
    return [MessageOut.model_validate(row) for row in rows]


async def touch(*, session: AsyncSession, conversation_id: uuid.UUID) -> None:
    await session.execute(
        update(m.Conversation)
        .where(m.Conversation.id == conversation_id)
        .values(last_activity_at=func.now())
    )
