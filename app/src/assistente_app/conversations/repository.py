"""The per-message hot paths in hand-written SQL over asyncpg (``core.db.RawPool``).

Each function is one or two round trips and at most one commit, where the ORM path took up to
ten statements and a commit per reply (notes of issue #12: the ORM and pool pre-pings were most
of the API's and the worker's CPU per message). The rules are the ones of ``service``: a message
is durable before it is queued, an idempotency key gives the stored message back, a message is
processed at most once, and replies are stored in the order Rasa gave them.

A dead or demoted server raises ``core.db.UNAVAILABLE_ERRORS``; callers turn that into a 503
(API) or a ``TransientError`` (worker), never into a failure counted against the message.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from assistente_app.conversations import models as m
from assistente_app.conversations.schemas import MessageOut
from assistente_app.core.db import Connection


@dataclass(frozen=True)
class ConversationAuth:
    id: uuid.UUID
    protocol: str
    channel: str
    status: str
    token_hash: str


async def conversation_for_auth(
    connection: Connection, conversation_id: uuid.UUID
) -> ConversationAuth | None:
    row = await connection.fetchrow(
        "SELECT id, protocol, channel, status, token_hash FROM conversations WHERE id = $1",
        conversation_id,
    )
    return None if row is None else ConversationAuth(**dict(row))


# One statement, so one implicit transaction and one commit: the message row, and the
# conversation reopened (resolved → bot) and its activity refreshed (at most once a minute:
# retention needs no more) when the message is new.
_INSERT_USER_MESSAGE = """
WITH inserted AS (
    INSERT INTO messages (id, conversation_id, role, text, status, idempotency_key)
    VALUES ($1, $2, 'user', $3, $4, $5)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, status
), conversation AS (
    UPDATE conversations
       SET status = CASE WHEN status = 'resolved' THEN 'bot' ELSE status END,
           team = CASE WHEN status = 'resolved' THEN NULL ELSE team END,
           agent_sub = CASE WHEN status = 'resolved' THEN NULL ELSE agent_sub END,
           last_activity_at = now()
     WHERE id = $2
       AND EXISTS (SELECT 1 FROM inserted)
       AND (status = 'resolved' OR last_activity_at < now() - interval '1 minute')
)
SELECT id, status FROM inserted
"""


async def insert_user_message(
    connection: Connection,
    *,
    conversation: ConversationAuth,
    text: str,
    idempotency_key: str | None,
) -> tuple[uuid.UUID, str, bool]:
    """Store a citizen's message (committed on return): ``(id, status, duplicate)``. A message
    for a conversation a human owns is stored ``for_agent`` and never reaches Rasa."""
    status = m.FOR_AGENT if conversation.status in (m.QUEUED, m.HUMAN) else m.ACCEPTED
    row = await connection.fetchrow(
        _INSERT_USER_MESSAGE, uuid.uuid4(), conversation.id, text, status, idempotency_key
    )
    if row is not None:
        return row["id"], row["status"], False
    existing = await connection.fetchrow(
        "SELECT id, status FROM messages WHERE idempotency_key = $1", idempotency_key
    )
    assert existing is not None, "ON CONFLICT without a conflicting row"
    return existing["id"], existing["status"], True


@dataclass(frozen=True)
class PendingTurn:
    """A citizen message as the worker needs it, with its conversation."""

    message_status: str
    text: str
    seq: int
    conversation_id: uuid.UUID
    protocol: str
    channel: str
    conversation_status: str
    created_at: dt.datetime


async def pending_turn(connection: Connection, message_id: uuid.UUID) -> PendingTurn | None:
    row = await connection.fetchrow(
        """
        SELECT m.status AS message_status, m.text, m.seq, c.id AS conversation_id, c.protocol,
               c.channel, c.status AS conversation_status, m.created_at
          FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1
        """,
        message_id,
    )
    return None if row is None else PendingTurn(**dict(row))


# One statement: the message is claimed (accepted → processed; a second run claims nothing and
# stores nothing), the replies are inserted in Rasa's order, the conversation's activity is
# refreshed. `delivered` marks replies that reach the citizen through the event hub, which the
# caller publishes right after this commit.
_STORE_REPLIES = """
WITH claimed AS (
    UPDATE messages SET status = 'processed'
     WHERE id = $1 AND status = 'accepted'
    RETURNING conversation_id
), replies AS (
    INSERT INTO messages (id, conversation_id, role, text, payload, status, delivered_at)
    SELECT reply.id, claimed.conversation_id, 'bot', reply.text, reply.payload::jsonb,
           'stored', CASE WHEN $5 THEN now() END
      FROM claimed,
           unnest($2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY
               AS reply(id, text, payload, position)
     ORDER BY reply.position
    RETURNING id, seq, role, text, payload::text AS payload, created_at
), touched AS (
    UPDATE conversations SET last_activity_at = now()
     WHERE id = (SELECT conversation_id FROM claimed)
)
SELECT (SELECT count(*) FROM claimed) AS claimed, replies.*
  FROM (SELECT 1) AS one LEFT JOIN replies ON true
 ORDER BY replies.seq
"""


async def store_replies(
    connection: Connection,
    *,
    message_id: uuid.UUID,
    replies: Sequence[tuple[str, dict[str, Any] | None]],
    delivered: bool,
) -> list[MessageOut] | None:
    """Store Rasa's replies to one message and mark it processed, in one commit. ``None`` when
    the message was no longer ``accepted`` (processed already, or erased): nothing stored."""
    rows = await connection.fetch(
        _STORE_REPLIES,
        message_id,
        [uuid.uuid4() for _ in replies],
        [text for text, _ in replies],
        [None if payload is None else json.dumps(payload) for _, payload in replies],
        delivered,
    )
    if not rows or rows[0]["claimed"] == 0:
        return None
    return [_message_out(row) for row in rows if row["id"] is not None]


async def replies_after(
    connection: Connection, conversation_id: uuid.UUID, *, after_seq: int, limit: int = 100
) -> list[MessageOut]:
    """What the citizen may have missed: every non-user message after ``after_seq``."""
    rows = await connection.fetch(
        """
        SELECT id, seq, role, text, payload::text AS payload, created_at
          FROM messages
         WHERE conversation_id = $1 AND seq > $2 AND role <> 'user'
         ORDER BY seq
         LIMIT $3
        """,
        conversation_id,
        after_seq,
        limit,
    )
    return [_message_out(row) for row in rows]


async def last_seq(connection: Connection, conversation_id: uuid.UUID) -> int:
    value = await connection.fetchval(
        "SELECT coalesce(max(seq), 0) FROM messages WHERE conversation_id = $1", conversation_id
    )
    return int(value)


def _message_out(row: asyncpg.Record) -> MessageOut:
    payload = row["payload"]
    created_at: dt.datetime = row["created_at"]
    return MessageOut(
        id=row["id"],
        seq=row["seq"],
        role=row["role"],
        text=row["text"],
        payload=None if payload is None else json.loads(payload),
        created_at=created_at,
    )
