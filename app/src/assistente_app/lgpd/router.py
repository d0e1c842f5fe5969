"""Admin endpoints for data-subject requests and retention (OIDC role ``admin``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistente_app.api.deps import AdminDep, ResourcesDep, SessionDep, SettingsDep
from assistente_app.core.text import CleanStr
from assistente_app.lgpd import service

router = APIRouter(prefix="/api/v1/admin/lgpd", tags=["lgpd"])


class Subject(BaseModel):
    """Identify the data subject by protocol, or by channel plus channel address."""

    model_config = ConfigDict(extra="forbid")
    protocol: CleanStr | None = Field(default=None, max_length=20)
    channel: Literal["web", "whatsapp", "telegram", "voice"] | None = None
    external_id: CleanStr | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _one_identifier(self) -> Subject:
        if not self.protocol and not (self.channel and self.external_id):
            raise ValueError("informe 'protocol' ou 'channel' + 'external_id'")
        return self


class ErasureResult(BaseModel):
    conversations: int
    messages: int
    rasa_events: int = Field(description="Events deleted from Rasa's tracker store")
    queue_entries: int = Field(description="Stream and dead-letter entries deleted")


class RetentionResult(BaseModel):
    deleted_conversations: int
    retention_days: int
    anonymized_conversations: int = 0
    anonymize_after_days: int = 0


@router.post("/export")
async def export(
    subject: Subject, admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """All conversations and messages of the subject, as JSON."""
    return await service.export_subject(
        session=session, settings=settings, requested_by=admin.subject, **subject.model_dump()
    )


@router.post("/erasure", response_model=ErasureResult)
async def erasure(
    subject: Subject, admin: AdminDep, session: SessionDep, resources: ResourcesDep
) -> ErasureResult:
    """Delete everything kept about the subject: conversations, messages, Rasa's tracker
    events, queue entries and dead letters. The audit keeps only a keyed hash."""
    result = await service.erase_subject(
        session=session, resources=resources, requested_by=admin.subject, **subject.model_dump()
    )
    return ErasureResult(**result)


@router.post("/retention", response_model=RetentionResult)
async def retention(
    admin: AdminDep, session: SessionDep, settings: SettingsDep, resources: ResourcesDep
) -> RetentionResult:
    """Run the retention job now (the worker also runs it every ``retention_interval_s``)."""
    deleted = await service.apply_retention(
        session=session,
        retention_days=settings.retention_days,
        resources=resources,
        requested_by=admin.subject,
    )
    anonymized = await service.apply_anonymization(
        session=session,
        anonymize_after_days=settings.retention_anonymize_after_days,
        resources=resources,
        requested_by=admin.subject,
    )
    return RetentionResult(
        deleted_conversations=deleted,
        retention_days=settings.retention_days,
        anonymized_conversations=anonymized,
        anonymize_after_days=settings.retention_anonymize_after_days,
    )
