"""Turn a channel's inbound text into a stored, queued message (shared by the webhooks)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.channels.inbound import InboundText
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.core import metrics
from assistente_app.core.errors import TooManyRequestsError
from assistente_app.core.ratelimit import enforce_rate_limit
from assistente_app.core.text import storable
from assistente_app.escalation import notify
from assistente_app.escalation import service as escalation_service
from assistente_app.escalation.catalog import LEFT_QUEUE, wants_to_leave
from assistente_app.runtime import Resources

log = logging.getLogger(__name__)


async def ingest_text(
    *, resources: Resources, channel: str, inbound: InboundText
) -> tuple[m.Conversation, m.Message | None]:
    """Store and queue one inbound text. Over-limit senders are dropped (and logged), not
    refused: a 429 would make the provider redeliver the whole batch of other senders too."""
    inbound = InboundText(
        sender=storable(inbound.sender)[:128],
        text=storable(inbound.text),
        idempotency_key=storable(inbound.idempotency_key) if inbound.idempotency_key else None,
    )
    try:
        await enforce_rate_limit(
            redis=resources.redis,
            prefix=resources.settings.queue_prefix,
            scope=channel,
            sender=inbound.sender,
            limit=resources.settings.rate_limit_per_minute,
        )
    except TooManyRequestsError:
        limited = True
    else:
        limited = False
    async with resources.db.write_sessions() as session:
        conversation = await conversation_service.conversation_for_sender(
            session=session,
            settings=resources.settings,
            channel=channel,
            external_id=inbound.sender,
        )
        if limited:
            await session.commit()
            log.warning("rate limit: dropped a message", extra={"channel": channel})
            metrics.MESSAGES_REJECTED.labels(channel=channel, reason="rate_limited").inc()
            return conversation, None
        message, _duplicate = await conversation_service.accept_user_message(
            session=session,
            queues=resources.queues,
            conversation=conversation,
            text_=inbound.text[: resources.settings.max_message_chars],
            idempotency_key=inbound.idempotency_key,
            events=resources.events,
        )
        if not _duplicate:
            await leave_queue_if_asked(
                resources=resources, session=session, conversation=conversation, text=message.text
            )
    return conversation, message


async def leave_queue(
    *, resources: Resources, session: AsyncSession, conversation: m.Conversation
) -> m.Message:
    """Take a waiting citizen out of the level-2 queue (they keep their protocol)."""
    notice = await escalation_service.leave_queue(session=session, conversation=conversation)
    await session.commit()
    escalation_service.record_closure(team=conversation.team, code=LEFT_QUEUE)
    await notify.queue_changed(
        resources, conversation_id=conversation.id, notices=[notice.id], teams=[conversation.team]
    )
    return notice


async def leave_queue_if_asked(
    *, resources: Resources, session: AsyncSession, conversation: m.Conversation, text: str
) -> bool:
    """On text channels a waiting citizen leaves the queue by writing "sair" (or "cancelar")."""
    if conversation.status != m.QUEUED or not wants_to_leave(text):
        return False
    await leave_queue(resources=resources, session=session, conversation=conversation)
    return True
