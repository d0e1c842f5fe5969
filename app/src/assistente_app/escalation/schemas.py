"""Agent API shapes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from assistente_contract import Team
from pydantic import BaseModel, ConfigDict, Field

from assistente_app.conversations.schemas import MessageOut
from assistente_app.core.text import CleanStr

ResolutionCode = Literal["resolvido", "orientado", "sem_resposta", "fora_do_escopo"]


class QueueItem(BaseModel):
    conversation_id: uuid.UUID
    protocol: str
    channel: str
    team: str | None
    reason: str | None
    queued_at: dt.datetime | None
    position: int
    summary: dict[str, Any] = Field(
        default_factory=dict,
        description="The bot's summary: intent, case_number, articles [{title, path}]",
    )


class AgentReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: CleanStr = Field(min_length=1, max_length=4000)


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: Team


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: ResolutionCode


class ConversationState(BaseModel):
    conversation_id: uuid.UUID
    protocol: str
    status: str
    team: str | None
    agent_sub: str | None


class ConversationDetail(ConversationState):
    channel: str
    reason: str | None
    queued_at: dt.datetime | None
    claimed_at: dt.datetime | None
    resolution_code: str | None
    summary: dict[str, Any]
    messages: list[MessageOut]


class ClerkOut(BaseModel):
    subject: str
    name: str
    teams: list[str]
    supervisor: bool
    admin: bool


class Option(BaseModel):
    id: str
    label: str


class CannedAnswerOut(BaseModel):
    id: str
    title: str
    text: str


class Catalog(BaseModel):
    teams: list[Option]
    canned_answers: list[CannedAnswerOut]
    resolution_codes: list[Option]
