"""Agent API shapes."""

from __future__ import annotations

import datetime as dt
import uuid

from assistente_contract import Team
from pydantic import BaseModel, ConfigDict, Field


class QueueItem(BaseModel):
    conversation_id: uuid.UUID
    protocol: str
    channel: str
    team: str | None
    reason: str | None
    queued_at: dt.datetime | None
    position: int


class AgentReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: Team


class ConversationState(BaseModel):
    conversation_id: uuid.UUID
    protocol: str
    status: str
    team: str | None
    agent_sub: str | None
