"""API shapes of conversations and messages shared by every reader (the web contract, the agent
API, LGPD exports, live events); separate from the tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# Sequence numbers are PostgreSQL bigints: a larger ``after`` is refused (422), not sent.
MAX_SEQ = 2**63 - 1


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    seq: int
    role: Literal["user", "bot", "agent", "system"]
    text: str
    payload: dict[str, Any] | None = None
    created_at: dt.datetime


class MessageList(BaseModel):
    conversation_id: uuid.UUID
    protocol: str
    status: str
    messages: list[MessageOut]


class ProtocolStatus(BaseModel):
    protocol: str
    conversation_id: uuid.UUID
    channel: str
    status: Literal["bot", "queued", "human", "resolved"]
    status_text: str
    team: str | None = None
    queue_position: int | None = None
    estimated_wait_minutes: int | None = None
    created_at: dt.datetime
    last_activity_at: dt.datetime
