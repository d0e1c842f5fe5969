"""Request and response shapes of the web contract (separate from the tables)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistente_app.core.text import CleanStr

# The channels whose clients open conversations through this contract.
WebContractChannel = Literal["web", "mobile"]


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: WebContractChannel = Field(
        default="web",
        description="The client's channel; providers' channels (WhatsApp, ...) use webhooks.",
    )


class ConversationCreated(BaseModel):
    id: uuid.UUID
    protocol: str
    token: str = Field(description="Bearer token giving access to this conversation only")
    channel: WebContractChannel
    created_at: dt.datetime


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: CleanStr = Field(min_length=1, max_length=4000)


class MessageAccepted(BaseModel):
    id: uuid.UUID
    protocol: str
    status: str
    duplicate: bool = False


class QueueLeft(BaseModel):
    protocol: str
    status: str
