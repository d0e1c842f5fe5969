"""Status of an attendance by protocol number."""

from __future__ import annotations

from fastapi import APIRouter, Path

from assistente_app.api.deps import BearerDep, ReadSessionDep, SettingsDep
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.conversations.protocol_numbers import is_valid_protocol
from assistente_app.conversations.schemas import ProtocolStatus
from assistente_app.core.errors import InvalidInputError
from assistente_app.escalation import service as escalation_service

router = APIRouter(prefix="/api/v1/protocols", tags=["protocols"])

STATUS_TEXT = {
    m.BOT: "Em atendimento pelo assistente digital.",
    m.QUEUED: "Aguardando atendimento humano.",
    m.HUMAN: "Em atendimento com um(a) atendente.",
    m.RESOLVED: "Atendimento encerrado.",
}


class InvalidProtocolError(InvalidInputError):
    code = "invalid_protocol"


@router.get("/{protocol}", response_model=ProtocolStatus)
async def protocol_status(
    token: BearerDep,
    session: ReadSessionDep,
    settings: SettingsDep,
    protocol: str = Path(max_length=20, examples=["20261125-004217-3"]),
) -> ProtocolStatus:
    """Status, queue position and estimated wait; needs the conversation's token."""
    if not is_valid_protocol(protocol):
        raise InvalidProtocolError("Número de protocolo inválido (formato AAAAMMDD-NNNNNN-D).")
    conversation = await conversation_service.authorize_protocol(
        session=session, protocol=protocol, token=token
    )
    place = await escalation_service.standing(
        session=session, settings=settings, conversation=conversation
    )
    return ProtocolStatus(
        protocol=conversation.protocol,
        conversation_id=conversation.id,
        channel=conversation.channel,
        status=conversation.status,  # type: ignore[arg-type]
        status_text=STATUS_TEXT.get(conversation.status, conversation.status),
        team=conversation.team,
        queue_position=place.position if place else None,
        estimated_wait_minutes=place.estimated_wait_minutes if place else None,
        created_at=conversation.created_at,
        last_activity_at=conversation.last_activity_at,
    )
