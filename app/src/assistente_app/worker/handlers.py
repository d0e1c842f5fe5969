"""What the worker does with each stream entry: inbound turns and outbound deliveries."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistente_contract import MessageMetadata
from redis.exceptions import LockError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.channels.base import Outbound
from assistente_app.channels.text import as_text
from assistente_app.conversations import models as m
from assistente_app.conversations import repository
from assistente_app.conversations import service as conversation_service
from assistente_app.conversations.schemas import MessageOut
from assistente_app.core import metrics
from assistente_app.core.db import UNAVAILABLE_ERRORS
from assistente_app.core.errors import TransientError
from assistente_app.core.logging import bind_conversation
from assistente_app.escalation import service as escalation_service
from assistente_app.queue.streams import Entry
from assistente_app.realtime.hub import publish_event
from assistente_app.runtime import Resources
from assistente_app.worker.rasa import RasaClient, interpret

log = logging.getLogger(__name__)

REPLY_ROLES = ("bot", "agent", "system")
# How long Rasa's answer is kept for a turn whose storing failed (the retry needs it).
ANSWER_KEPT_S = 3600


@dataclass(kw_only=True)
class WorkerContext(Resources):
    """The process's resources plus what only the worker talks to."""

    rasa: RasaClient
    outbound: Mapping[str, Outbound] = field(default_factory=dict)
    """Per channel name, the sender of channels whose provider the worker must call."""


@contextlib.asynccontextmanager
async def held_lock(
    ctx: WorkerContext, key: str, *, timeout_s: float, wait_s: float
) -> AsyncIterator[None]:
    """A Redis lock around one entry's work; not getting it is transient (another worker has
    the conversation, or Redis blinked), so the entry is retried without counting a failure."""
    lock = ctx.redis.lock(
        f"{ctx.settings.queue_prefix}:{key}", timeout=timeout_s, blocking_timeout=wait_s
    )
    try:
        acquired = await lock.acquire()
    except LockError as exc:
        raise TransientError(f"lock {key} unavailable") from exc
    if not acquired:
        raise TransientError(f"{key} held by another worker")
    try:
        yield
    finally:
        try:
            await lock.release()
        except LockError:
            log.warning("%s lock expired before release", key.rsplit(":", 1)[0])


async def handle_inbound(ctx: WorkerContext, entry: Entry) -> None:
    """One citizen message → Rasa → stored replies (+ escalation) → outbound queue."""
    message_id = uuid.UUID(entry.fields["message_id"])
    timeout = ctx.settings.rasa_timeout_s
    key = f"lock:conv:{entry.fields.get('conversation_id')}"
    async with held_lock(ctx, key, timeout_s=timeout + 30, wait_s=timeout):
        await _process_turn(ctx, message_id, redelivered=entry.redelivered)


def _answer_key(ctx: WorkerContext, message_id: uuid.UUID) -> str:
    return f"{ctx.settings.queue_prefix}:rasa-answer:{message_id}"


async def _remembered_answer(
    ctx: WorkerContext, message_id: uuid.UUID
) -> list[dict[str, Any]] | None:
    """Rasa's answer to this message, kept when storing it failed (see ``_process_turn``)."""
    raw = await ctx.redis.get(_answer_key(ctx, message_id))
    if raw is None:
        return None
    items = json.loads(raw)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else None


async def _process_turn(ctx: WorkerContext, message_id: uuid.UUID, *, redelivered: bool) -> None:
    try:
        async with ctx.db.raw_writer.acquire() as connection:
            turn = await repository.pending_turn(connection, message_id)
    except UNAVAILABLE_ERRORS as error:
        raise TransientError("database unavailable") from error
    if turn is None:
        log.info("message no longer exists (erased?)", extra={"message_id": str(message_id)})
        return
    bind_conversation(protocol=turn.protocol, conversation_id=turn.conversation_id)
    if turn.message_status != m.ACCEPTED:
        # Already processed: a redelivery after a crash. Make sure the replies went out.
        await _redeliver(ctx, turn)
        return
    if turn.conversation_status in (m.QUEUED, m.HUMAN):
        await _hold_for_agent(ctx, message_id)
        return
    metadata = MessageMetadata(
        protocol=turn.protocol, channel=turn.channel, conversation_id=str(turn.conversation_id)
    )
    # Rasa has its turn in its tracker once it answers: if storing the answer then fails (a
    # database failover), the retry stores the same answer instead of asking Rasa again, so
    # the citizen gets one reply and Rasa's tracker one turn.
    items = await _remembered_answer(ctx, message_id) if redelivered else None
    if items is None:
        items = await ctx.rasa.send(
            sender=str(turn.conversation_id), message=turn.text, metadata=metadata
        )
    try:
        await _store_turn(ctx, turn, message_id, items)
    except Exception:
        with contextlib.suppress(Exception):  # best effort: Redis may be down too
            await ctx.redis.set(_answer_key(ctx, message_id), json.dumps(items), ex=ANSWER_KEPT_S)
        raise


async def _store_turn(
    ctx: WorkerContext,
    turn: repository.PendingTurn,
    message_id: uuid.UUID,
    items: list[dict[str, Any]],
) -> None:
    bot_turn = interpret(items)
    if bot_turn.escalation is not None:
        # Rare and many-sided (queues, service hours, notices): the ORM path.
        reply_ids = await store_bot_turn(ctx, message_id=message_id, items=items)
        await conversation_service.enqueue_delivery(
            queues=ctx.queues, conversation_id=turn.conversation_id, message_ids=reply_ids
        )
        log.info("turn escalated to %s", bot_turn.escalation.team)
        return
    through_hub = turn.channel not in ctx.outbound
    try:
        async with ctx.db.raw_writer.acquire() as connection:
            replies = await repository.store_replies(
                connection, message_id=message_id, replies=bot_turn.messages,
                delivered=through_hub,
            )  # fmt: skip
    except UNAVAILABLE_ERRORS as error:
        raise TransientError("database unavailable") from error
    if replies is None:
        return  # another worker stored this turn meanwhile
    elapsed_s = max(0.0, (conversation_service.now_utc() - turn.created_at).total_seconds())
    metrics.TURNS.labels(channel=turn.channel, outcome="replied").inc()
    metrics.TURN_DURATION.labels(channel=turn.channel).observe(elapsed_s)
    # One line per turn: on call, a protocol's turns are found by searching the logs for it.
    log.info(
        "turn answered: %d reply(ies), %.0f ms after acceptance", len(replies), elapsed_s * 1000
    )
    if through_hub:
        # Web, mobile, voice: the replies reach the citizen as an event, right after the commit
        # (no outbound hop). If this push is lost, the socket's resync and the history have them.
        metrics.DELIVERIES.labels(channel=turn.channel, outcome="sent").inc(len(replies))
        await publish_replies(ctx, turn.conversation_id, turn.conversation_status, replies)
    else:
        await conversation_service.enqueue_delivery(
            queues=ctx.queues,
            conversation_id=turn.conversation_id,
            message_ids=[reply.id for reply in replies],
        )


async def _hold_for_agent(ctx: WorkerContext, message_id: uuid.UUID) -> None:
    """The bot stays silent while a human owns the conversation; the clerk sees the message."""
    async with ctx.db.write_sessions() as session:
        message = await session.get(m.Message, message_id, with_for_update=True)
        if message is None or message.status != m.ACCEPTED:
            return
        conversation = await session.get(m.Conversation, message.conversation_id)
        assert conversation is not None
        message.status = m.FOR_AGENT
        await session.commit()
    metrics.TURNS.labels(channel=conversation.channel, outcome="human").inc()
    await conversation_service.announce_for_agent(ctx.events, conversation, message)


async def publish_replies(
    ctx: WorkerContext,
    conversation_id: uuid.UUID,
    status: str,
    replies: list[MessageOut],
) -> None:
    if not replies:
        return
    await publish_event(
        ctx.redis,
        ctx.settings.queue_prefix,
        {
            "type": "messages",
            "conversation_id": str(conversation_id),
            "status": status,
            "messages": [reply.model_dump(mode="json") for reply in replies],
        },
    )


async def _redeliver(ctx: WorkerContext, turn: repository.PendingTurn) -> None:
    if turn.channel in ctx.outbound:
        async with ctx.db.write_sessions() as session:
            await _requeue_undelivered(ctx, session, turn.conversation_id, after_seq=turn.seq)
        return
    # The push may have been lost with the process that stored the replies: push them again
    # (clients drop message ids they already have).
    try:
        async with ctx.db.raw_writer.acquire() as connection:
            replies = await repository.replies_after(
                connection, turn.conversation_id, after_seq=turn.seq
            )
    except UNAVAILABLE_ERRORS as error:
        raise TransientError("database unavailable") from error
    await publish_replies(ctx, turn.conversation_id, turn.conversation_status, replies)


async def store_bot_turn(
    ctx: WorkerContext, *, message_id: uuid.UUID, items: list[dict[str, Any]]
) -> list[uuid.UUID]:
    """Persist Rasa's answer to one user message (idempotent) and apply an escalation."""
    turn = interpret(items)
    async with ctx.db.write_sessions() as session:
        message = await session.get(m.Message, message_id, with_for_update=True)
        if message is None or message.status != m.ACCEPTED:
            return []
        conversation = await session.get(
            m.Conversation, message.conversation_id, with_for_update=True
        )
        assert conversation is not None
        reply_ids = []
        escalation: escalation_service.EscalationResult | None = None
        for text, payload in turn.messages:
            reply = await conversation_service.add_message(
                session=session,
                conversation_id=conversation.id,
                role="bot",
                text_=text,
                payload=payload,
            )
            reply_ids.append(reply.id)
        if turn.escalation is not None:
            escalation = await escalation_service.escalate(
                session=session,
                settings=ctx.settings,
                conversation=conversation,
                team=turn.escalation.team,
                reason=turn.escalation.reason,
                summary=await escalation_service.bot_summary(
                    session=session, conversation=conversation, escalation=turn.escalation
                ),
            )
            reply_ids.append(escalation.notice.id)
        message.status = m.PROCESSED
        stored_at = conversation_service.now_utc()
        conversation.last_activity_at = stored_at
        await session.commit()
        if escalation is not None:
            escalation_service.record_escalation(escalation)
        outcome = "escalated" if conversation.status == m.QUEUED else "replied"
        metrics.TURNS.labels(channel=conversation.channel, outcome=outcome).inc()
        metrics.TURN_DURATION.labels(channel=conversation.channel).observe(
            max(0.0, (stored_at - message.created_at).total_seconds())
        )
    if turn.escalation is not None:
        await ctx.events.queues_changed(turn.escalation.team)  # the clerks' boards
    return reply_ids


async def _requeue_undelivered(
    ctx: WorkerContext, session: AsyncSession, conversation_id: uuid.UUID, *, after_seq: int
) -> None:
    ids = list(
        (
            await session.execute(
                select(m.Message.id).where(
                    m.Message.conversation_id == conversation_id,
                    m.Message.seq > after_seq,
                    m.Message.role.in_(REPLY_ROLES),
                    m.Message.delivered_at.is_(None),
                )
            )
        ).scalars()
    )
    await conversation_service.enqueue_delivery(
        queues=ctx.queues, conversation_id=conversation_id, message_ids=ids
    )


async def handle_outbound(ctx: WorkerContext, entry: Entry) -> None:
    """Send replies on the citizen's channel and push them to WebSocket subscribers.

    One delivery per conversation at a time (a Redis lock): two entries naming the same reply
    (a reclaim, a requeue after a crash) would otherwise both find it undelivered and send it
    twice. The lock also keeps a conversation's replies in order across workers."""
    conversation_id = uuid.UUID(entry.fields["conversation_id"])
    timeout = ctx.settings.outbound_timeout_s
    key = f"lock:out:{conversation_id}"
    async with held_lock(ctx, key, timeout_s=timeout * 4 + 30, wait_s=timeout):
        await _deliver(ctx, entry, conversation_id)


async def _deliver(ctx: WorkerContext, entry: Entry, conversation_id: uuid.UUID) -> None:
    ids = [uuid.UUID(i) for i in entry.fields.get("message_ids", "").split(",") if i]
    async with ctx.db.write_sessions() as session:
        conversation = await session.get(m.Conversation, conversation_id)
        if conversation is None:
            return
        messages = list(
            (
                await session.execute(
                    select(m.Message)
                    .where(
                        m.Message.id.in_(ids),
                        m.Message.delivered_at.is_(None),
                        m.Message.status != m.FAILED,
                    )
                    .order_by(m.Message.seq)
                )
            ).scalars()
        )
        if not messages:
            return
        if conversation.channel not in ctx.enabled_channels:
            # Switched off by the court: the replies stay undelivered (and visible to clerks).
            log.warning(
                "channel disabled: %d reply(ies) not delivered",
                len(messages),
                extra={"channel": conversation.channel},
            )
            return
        for message in messages:
            text = as_text(message.text, message.payload)
            if text:
                try:
                    await _send_on_channel(ctx, conversation, text)
                except Exception:
                    metrics.DELIVERIES.labels(channel=conversation.channel, outcome="failed").inc()
                    raise
            # Commit each one: a retry after a partial failure must not resend the earlier ones.
            await session.execute(
                update(m.Message)
                .where(m.Message.id == message.id)
                .values(delivered_at=conversation_service.now_utc())
            )
            await session.commit()
            metrics.DELIVERIES.labels(channel=conversation.channel, outcome="sent").inc()
        await publish_event(
            ctx.redis,
            ctx.settings.queue_prefix,
            {
                "type": "messages",
                "conversation_id": str(conversation.id),
                "status": conversation.status,
                "messages": [
                    MessageOut.model_validate(x).model_dump(mode="json") for x in messages
                ],
            },
        )


async def _send_on_channel(ctx: WorkerContext, conversation: m.Conversation, text: str) -> None:
    # Channels without a sender (web, voice, ...) read replies from the event published below.
    sender = ctx.outbound.get(conversation.channel)
    if sender is not None:
        await sender.send(to=str(conversation.external_id), text=text)


async def on_inbound_dead_letter(ctx: WorkerContext, entry: Entry, reason: str) -> None:
    """Tell the citizen their message could not be processed (it stays in the history)."""
    message_id = uuid.UUID(entry.fields["message_id"])
    async with ctx.db.write_sessions() as session:
        message = await session.get(m.Message, message_id, with_for_update=True)
        if message is None or message.status != m.ACCEPTED:
            return
        conversation = await session.get(m.Conversation, message.conversation_id)
        assert conversation is not None
        message.status = m.FAILED
        metrics.TURNS.labels(channel=conversation.channel, outcome="failed").inc()
        notice = await conversation_service.add_message(
            session=session,
            conversation_id=conversation.id,
            role="system",
            text_=(
                "Não conseguimos processar a sua mensagem. Ela ficou registrada no protocolo "
                f"{conversation.protocol} e será analisada pela equipe. Você pode tentar "
                "reformular a pergunta."
            ),
            payload={"type": "processing_failed"},
        )
        await session.commit()
    log.error("message dead-lettered: %s", reason, extra={"message_id": str(message_id)})
    await conversation_service.enqueue_delivery(
        queues=ctx.queues, conversation_id=conversation.id, message_ids=[notice.id]
    )


async def on_outbound_dead_letter(ctx: WorkerContext, entry: Entry, reason: str) -> None:
    """The channel refused the replies for good (a WhatsApp 4xx, a blocked bot): mark them
    ``failed`` so the sweeper stops retrying, and say so loudly. They stay in the history
    (clerks see them), and the admin API can requeue the dead letter once the cause is fixed."""
    ids = [uuid.UUID(i) for i in entry.fields.get("message_ids", "").split(",") if i]
    async with ctx.db.write_sessions() as session:
        await session.execute(
            update(m.Message)
            .where(m.Message.id.in_(ids), m.Message.delivered_at.is_(None))
            .values(status=m.FAILED)
        )
        await session.commit()
    log.error(
        "reply delivery dead-lettered (%d message(s)): %s",
        len(ids),
        reason,
        extra={"conversation_id": entry.fields.get("conversation_id")},
    )
