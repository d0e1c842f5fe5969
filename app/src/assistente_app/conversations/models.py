"""Tables: conversations (one protocol each) and their messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from assistente_app.core.db import Base

# Conversation.status values
BOT = "bot"  # the bot answers
QUEUED = "queued"  # waiting in a level-2 team queue
HUMAN = "human"  # an agent owns it; the bot is silent
RESOLVED = "resolved"  # an agent closed it; a new message goes back to the bot

# Message.status values (user messages move through them; others are "stored")
ACCEPTED = "accepted"  # stored and queued for the worker
PROCESSED = "processed"  # the worker has finished with it
FOR_AGENT = "for_agent"  # arrived while a human owns the conversation
FAILED = "failed"  # dead-lettered
STORED = "stored"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    protocol: Mapped[str] = mapped_column(String(20), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    # Sender address on the channel: WhatsApp wa_id, Telegram chat id, voice CallSid.
    external_id: Mapped[str | None] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=BOT)
    team: Mapped[str | None] = mapped_column(String(32))
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Restarts on transfer (queued_at, the place in line, does not): the max-wait clock.
    wait_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The bot's summary for the clerk: {"intent", "case_number", "articles": [{title, path}]}.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    agent_sub: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when retention removed the personal data (the protocol and the bot's side remain).
    anonymized_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )
    last_activity_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )

    __table_args__ = (
        Index("ix_conversations_channel_external", "channel", "external_id"),
        Index("ix_conversations_queue", "status", "team", "queued_at"),
        Index("ix_conversations_last_activity", "last_activity_at"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    # Monotonic order of the whole table; history is sorted by it.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(8))  # user | bot | agent | system
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default=STORED)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    agent_sub: Mapped[str | None] = mapped_column(String(255))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )

    __table_args__ = (
        # The supervisor's count of closures today (see migration 0002).
        Index(
            "ix_messages_closures",
            "created_at",
            postgresql_where=sql_text("role = 'system' AND payload->>'type' = 'resolved'"),
        ),
    )
