"""LGPD: retention, data-subject export and erasure, with an audit trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid
from typing import Any

from assistente_contract import as_team
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.conversations import models as m
from assistente_app.conversations.schemas import MessageOut
from assistente_app.core import metrics
from assistente_app.core.settings import CoreSettings
from assistente_app.lgpd.models import LgpdRequest
from assistente_app.realtime.hub import REVOKED_EVENT, publish_event
from assistente_app.runtime import Resources

log = logging.getLogger(__name__)

# Outside production only (production refuses to start without ASSISTENTE_LGPD_AUDIT_KEY).
DEVELOPMENT_AUDIT_KEY = "assistente-desenvolvimento"


def subject_hash(value: str, settings: CoreSettings) -> str:
    """A keyed hash (HMAC-SHA256) of the subject's identifier for the audit trail.

    An unkeyed SHA-256 of a phone number is no protection: there are few enough numbers to
    hash them all. With the key, the encarregado can still answer "was this subject's data
    erased?" by hashing the identifier again, and nobody without the key can."""
    key = settings.lgpd_audit_key
    secret = key.get_secret_value() if key is not None else DEVELOPMENT_AUDIT_KEY
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def _subject_filter(*, protocol: str | None, channel: str | None, external_id: str | None) -> Any:
    if protocol:
        return m.Conversation.protocol == protocol
    return (m.Conversation.channel == channel) & (m.Conversation.external_id == external_id)


async def export_subject(
    *,
    session: AsyncSession,
    settings: CoreSettings,
    requested_by: str,
    protocol: str | None = None,
    channel: str | None = None,
    external_id: str | None = None,
) -> dict[str, Any]:
    """Everything stored about a data subject (LGPD art. 18 II / art. 19)."""
    where = _subject_filter(protocol=protocol, channel=channel, external_id=external_id)
    conversations = list(
        (
            await session.execute(
                select(m.Conversation).where(where).order_by(m.Conversation.created_at)
            )
        ).scalars()
    )
    exported = []
    for conversation in conversations:
        rows = await session.execute(
            select(m.Message)
            .where(m.Message.conversation_id == conversation.id)
            .order_by(m.Message.seq)
        )
        exported.append(
            {
                "protocol": conversation.protocol,
                "conversation_id": str(conversation.id),
                "channel": conversation.channel,
                "external_id": conversation.external_id,
                "status": conversation.status,
                "team": conversation.team,
                "created_at": conversation.created_at.isoformat(),
                "last_activity_at": conversation.last_activity_at.isoformat(),
                "messages": [
                    MessageOut.model_validate(row).model_dump(mode="json") for row in rows.scalars()
                ],
            }
        )
    session.add(
        LgpdRequest(
            kind="export",
            subject_hash=subject_hash(protocol or f"{channel}:{external_id}", settings),
            requested_by=requested_by,
            result={"conversations": len(exported)},
        )
    )
    await session.commit()
    return {"generated_at": dt.datetime.now(dt.UTC).isoformat(), "conversations": exported}


async def erase_subject(
    *,
    session: AsyncSession,
    resources: Resources,
    requested_by: str,
    protocol: str | None = None,
    channel: str | None = None,
    external_id: str | None = None,
) -> dict[str, int]:
    """Delete everything kept about the subject (LGPD art. 18 VI): the conversations and their
    messages, Rasa's tracker events, the entries of the streams and dead letters, and Rasa's
    answers kept for retries. Open WebSockets of those conversations are closed.

    The other stores are cleaned first and the app's rows last: if a store is unavailable the
    request fails (503) with the rows still there, so repeating it finds them again."""
    where = _subject_filter(protocol=protocol, channel=channel, external_id=external_id)
    ids = list((await session.execute(select(m.Conversation.id).where(where))).scalars())
    message_ids: list[uuid.UUID] = []
    rasa_events = queue_entries = 0
    if ids:
        message_ids = list(
            (
                await session.execute(
                    select(m.Message.id).where(m.Message.conversation_id.in_(ids))
                )
            ).scalars()
        )
        if resources.rasa_tracker is not None:
            rasa_events = await resources.rasa_tracker.forget(ids)
        for queue in resources.queues.all():
            for conversation_id in ids:
                queue_entries += await queue.forget_conversation(str(conversation_id))
        prefix = resources.settings.queue_prefix
        if message_ids:
            await resources.redis.delete(*(f"{prefix}:rasa-answer:{i}" for i in message_ids))
        await session.execute(delete(m.Conversation).where(m.Conversation.id.in_(ids)))
    result = {
        "conversations": len(ids),
        "messages": len(message_ids),
        "rasa_events": rasa_events,
        "queue_entries": queue_entries,
    }
    session.add(
        LgpdRequest(
            kind="erasure",
            subject_hash=subject_hash(protocol or f"{channel}:{external_id}", resources.settings),
            requested_by=requested_by,
            result=result,
        )
    )
    await session.commit()
    for conversation_id in ids:
        await publish_event(
            resources.redis,
            resources.settings.queue_prefix,
            {"type": REVOKED_EVENT, "conversation_id": str(conversation_id)},
        )
    return result


async def apply_retention(
    *,
    session: AsyncSession,
    retention_days: int,
    resources: Resources | None = None,
    requested_by: str = "retention-job",
) -> int:
    """Delete conversations idle for longer than ``retention_days`` (messages cascade), and,
    with ``resources``, Rasa's events and dead letters older than that."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days)
    rasa_events = dead_letters = 0
    if resources is not None:
        if resources.rasa_tracker is not None:
            rasa_events = await resources.rasa_tracker.expire(cutoff)
        for queue in resources.queues.all():
            dead_letters += await queue.trim_dead_letters(before=cutoff)
    deleted = (
        await session.execute(
            delete(m.Conversation)
            .where(m.Conversation.last_activity_at < cutoff)
            .returning(m.Conversation.status, m.Conversation.team)
        )
    ).all()
    count = len(deleted)
    session.add(
        LgpdRequest(
            kind="retention",
            subject_hash=None,
            requested_by=requested_by,
            result={
                "conversations": count,
                "rasa_events": rasa_events,
                "dead_letters": dead_letters,
                "cutoff": cutoff.isoformat(),
            },
        )
    )
    await session.commit()
    for status, team in deleted:
        if status == m.QUEUED:  # the citizen never got a clerk
            metrics.ESCALATION_ABANDONMENTS.labels(team=as_team(team), reason="erased").inc()
    return count


ANONYMIZED_TEXT = "[removido: dados pessoais anonimizados]"
# A conversation is closed once resolved, or after this silence (a channel sender's next message
# then opens a new attendance, see conversations.service).
CLOSED_AFTER_SILENCE = dt.timedelta(hours=24)


async def apply_anonymization(
    *,
    session: AsyncSession,
    anonymize_after_days: int,
    resources: Resources | None = None,
    requested_by: str = "retention-job",
) -> int:
    """Remove the personal data of closed conversations idle for ``anonymize_after_days``: what
    the citizen and the clerk wrote, the channel address, the escalation reason, who the clerk was,
    the case number of the bot's summary.
    The protocol, the channel, the dates and the bot's answers stay for statistics."""
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=anonymize_after_days)
    closed = or_(
        m.Conversation.status == m.RESOLVED,
        m.Conversation.last_activity_at < now - CLOSED_AFTER_SILENCE,
    )
    ids = list(
        (
            await session.execute(
                select(m.Conversation.id)
                .where(
                    m.Conversation.anonymized_at.is_(None),
                    m.Conversation.status.in_((m.BOT, m.RESOLVED)),
                    m.Conversation.last_activity_at < cutoff,
                    closed,
                )
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if ids and resources is not None and resources.rasa_tracker is not None:
        # Rasa's events hold what the citizen wrote and the slots filled from it.
        await resources.rasa_tracker.forget(ids)
    if ids:
        await session.execute(
            update(m.Message)
            # The clerks' replies may quote the citizen too; the bot's come from documents.
            .where(m.Message.conversation_id.in_(ids), m.Message.role.in_(("user", "agent")))
            .values(text=ANONYMIZED_TEXT, payload=None)
        )
        await session.execute(
            update(m.Message)
            .where(m.Message.conversation_id.in_(ids), m.Message.agent_sub.is_not(None))
            .values(agent_sub=None)
        )
        # "Atendente entrou na conversa: <nome>" names the clerk.
        await session.execute(
            update(m.Message)
            .where(
                m.Message.conversation_id.in_(ids),
                m.Message.payload["type"].astext == "agent_joined",
            )
            .values(text="Atendente entrou na conversa.", payload={"type": "agent_joined"})
        )
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id.in_(ids))
            # The bot's summary holds the case number the citizen gave.
            .values(
                external_id=None,
                escalation_reason=None,
                agent_sub=None,
                summary=None,
                anonymized_at=now,
            )
        )
    session.add(
        LgpdRequest(
            kind="anonymize",
            subject_hash=None,
            requested_by=requested_by,
            result={"conversations": len(ids), "cutoff": cutoff.isoformat()},
        )
    )
    await session.commit()
    return len(ids)
