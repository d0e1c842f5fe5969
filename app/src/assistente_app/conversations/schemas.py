"""API shapes of conversations and messages (separate from the tables)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["web", "whatsapp", "telegram", "voice"]
CHANNELS: tuple[str, ...] = ("web", "whatsapp", "telegram", "voice")


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["web"] = Field(
        default="web",
        description="Only the web widget opens conversations here; other channels use webhooks.",
    )


class ConversationCreated(BaseModel):
    id: uuid.UUID
    protocol: str
    token: str = Field(description="Bearer token giving access to this conversation only")
    channel: Channel
    created_at: dt.datetime


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class MessageAccepted(BaseModel):
    id: uuid.UUID
    protocol: str
    status: str
    duplicate: bool = False


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
