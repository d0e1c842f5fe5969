"""Human level 2: team queues, positions, wait estimates, service hours, agent actions."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Any, Final, Literal

from assistente_contract import Escalation, as_team, team_label
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.auth.oidc import Clerk
from assistente_app.conversations import models as m
from assistente_app.conversations import service as conversation_service
from assistente_app.core import metrics
from assistente_app.core.errors import ConflictError, ForbiddenError, NotFoundError
from assistente_app.core.logging import bind_conversation
from assistente_app.core.settings import WEEKDAYS, CoreSettings
from assistente_app.escalation.catalog import EXPIRED, LEFT_QUEUE, RESOLUTION_CODES

# Why a queued conversation ended without a clerk (metrics), by the code it was closed with.
ABANDONMENT_REASONS: Final[dict[str, str]] = {LEFT_QUEUE: "left", EXPIRED: "expired"}

# Knowledge articles shown to the citizen that the summary keeps (the most recent ones).
SUMMARY_ARTICLES = 5

WEEKDAY_NAMES = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")


@dataclass(frozen=True)
class QueueStanding:
    position: int
    estimated_wait_minutes: int


@dataclass(frozen=True)
class EscalationResult:
    """What an escalation did: ``queued`` (a new waiter), ``waiting`` (already queued or with a
    clerk), or why it found no queue (``queue_full``, ``service_closed``); ``notice`` tells the
    citizen."""

    notice: m.Message
    team: str
    outcome: Literal["queued", "waiting", "queue_full", "service_closed"]


def is_open(*, settings: CoreSettings, at: dt.datetime) -> bool:
    local = at.astimezone(settings.tz)
    # service_close = 23:59:59.999999 means "until midnight".
    before_close = local.time() < settings.service_close or settings.service_close == dt.time.max
    return (
        local.weekday() in settings.open_weekdays
        and settings.service_open <= local.time()
        and before_close
    )


def next_opening(*, settings: CoreSettings, at: dt.datetime) -> dt.datetime:
    """The next moment the human service opens (``at`` itself if it is open)."""
    local = at.astimezone(settings.tz)
    for days_ahead in range(8):
        day = local.date() + dt.timedelta(days=days_ahead)
        if day.weekday() not in settings.open_weekdays:
            continue
        opening = dt.datetime.combine(day, settings.service_open, tzinfo=settings.tz)
        closing = dt.datetime.combine(day, settings.service_close, tzinfo=settings.tz)
        if local < closing:
            return max(opening, local)
    raise ValueError("service_days is empty")


def hours_text(settings: CoreSettings) -> str:
    days = [WEEKDAY_NAMES[WEEKDAYS.index(d)] for d in settings.service_days.split(",")]
    joined = days[0] if len(days) == 1 else ", ".join(days[:-1]) + " e " + days[-1]
    return f"{joined}, das {settings.service_open:%H:%M} às {settings.service_close:%H:%M}"


async def standing(
    *, session: AsyncSession, settings: CoreSettings, conversation: m.Conversation
) -> QueueStanding | None:
    if conversation.status != m.QUEUED or conversation.queued_at is None:
        return None
    ahead = (
        await session.execute(
            select(func.count())
            .select_from(m.Conversation)
            .where(
                m.Conversation.status == m.QUEUED,
                m.Conversation.team == conversation.team,
                or_(
                    m.Conversation.queued_at < conversation.queued_at,
                    and_(
                        m.Conversation.queued_at == conversation.queued_at,
                        m.Conversation.id < conversation.id,
                    ),
                ),
            )
        )
    ).scalar_one()
    agents = (
        await session.execute(
            select(func.count(func.distinct(m.Conversation.agent_sub))).where(
                m.Conversation.status == m.HUMAN, m.Conversation.team == conversation.team
            )
        )
    ).scalar_one()
    position = int(ahead) + 1
    # Each agent clears one conversation every average_handle_minutes; with nobody online yet,
    # assume one agent so the citizen still gets an order of magnitude.
    wait = math.ceil(position * settings.average_handle_minutes / max(1, int(agents)))
    return QueueStanding(position=position, estimated_wait_minutes=wait)


async def team_standings(
    *, session: AsyncSession, settings: CoreSettings, team: str
) -> list[tuple[uuid.UUID, QueueStanding]]:
    """Every queued conversation of ``team`` with its current position and wait estimate."""
    agents = (
        await session.execute(
            select(func.count(func.distinct(m.Conversation.agent_sub))).where(
                m.Conversation.status == m.HUMAN, m.Conversation.team == team
            )
        )
    ).scalar_one()
    rows = await session.execute(
        select(m.Conversation.id)
        .where(m.Conversation.status == m.QUEUED, m.Conversation.team == team)
        .order_by(m.Conversation.queued_at, m.Conversation.id)
    )
    per_agent = settings.average_handle_minutes / max(1, int(agents))
    return [
        (conversation_id, QueueStanding(index, math.ceil(index * per_agent)))
        for index, conversation_id in enumerate(rows.scalars(), start=1)
    ]


def standing_text(*, team: str, protocol: str, place: QueueStanding) -> str:
    return (
        f"Você está na fila de {team_label(team)}, na posição {place.position}. "
        f"Tempo estimado de espera: cerca de {place.estimated_wait_minutes} minuto(s). "
        f"Seu protocolo é {protocol}."
    )


async def articles_shown(
    *, session: AsyncSession, conversation_id: uuid.UUID
) -> list[dict[str, str]]:
    """The knowledge articles the bot quoted in this conversation, most recent first."""
    rows = await session.execute(
        select(m.Message.payload)
        .where(
            m.Message.conversation_id == conversation_id,
            m.Message.role == "bot",
            m.Message.payload["sources"].isnot(None),
        )
        .order_by(m.Message.seq.desc())
        .limit(20)
    )
    articles: dict[str, dict[str, str]] = {}
    for payload in rows.scalars():
        for source in (payload or {}).get("sources") or []:
            path = str(source.get("path") or "")
            if path and path not in articles:
                articles[path] = {"title": str(source.get("title") or path), "path": path}
    return list(articles.values())[:SUMMARY_ARTICLES]


async def bot_summary(
    *, session: AsyncSession, conversation: m.Conversation, escalation: Escalation
) -> dict[str, Any]:
    """What the bot knew when it handed over, for the clerk."""
    return {
        "intent": escalation.intent or None,
        "case_number": escalation.case_number or None,
        "articles": await articles_shown(session=session, conversation_id=conversation.id),
    }


async def waiting_in(*, session: AsyncSession, team: str) -> int:
    count = await session.execute(
        select(func.count())
        .select_from(m.Conversation)
        .where(m.Conversation.status == m.QUEUED, m.Conversation.team == team)
    )
    return int(count.scalar_one())


async def escalate(
    *,
    session: AsyncSession,
    settings: CoreSettings,
    conversation: m.Conversation,
    team: str,
    reason: str,
    summary: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> EscalationResult:
    """Put the conversation in ``team``'s queue (or explain why not: service hours, a full
    queue), adding the system message that tells the citizen what happens next. Whatever
    happens, the citizen keeps the conversation's protocol. Count it with
    ``record_escalation`` once committed."""
    at = at or conversation_service.now_utc()
    team = as_team(team)
    if not is_open(settings=settings, at=at):
        opening = next_opening(settings=settings, at=at)
        text = (
            f"No momento não há atendentes disponíveis. O atendimento humano funciona de "
            f"{hours_text(settings)} (horário de Brasília). Retorne a partir de "
            f"{opening:%d/%m/%Y às %H:%M} informando o protocolo {conversation.protocol}."
        )
        closed = await conversation_service.add_message(
            session=session,
            conversation_id=conversation.id,
            role="system",
            text_=text,
            payload={"type": "service_closed", "next_opening": opening.isoformat()},
        )
        return EscalationResult(closed, team, "service_closed")
    outcome: Literal["queued", "waiting"] = "waiting"
    if conversation.status not in (m.QUEUED, m.HUMAN):
        # Serialise escalations of one team, so the limit holds under concurrent workers.
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"queue:{team}", 0)))
        )
        if await waiting_in(session=session, team=team) >= settings.escalation_queue_limit:
            full = await conversation_service.add_message(
                session=session,
                conversation_id=conversation.id,
                role="system",
                text_=(
                    f"A fila de {team_label(team)} está cheia no momento e não conseguimos "
                    "colocar você nela agora. Tente de novo em alguns minutos, informando o "
                    f"protocolo {conversation.protocol}; o assistente continua à disposição."
                ),
                payload={"type": "queue_full", "team": team},
            )
            return EscalationResult(full, team, "queue_full")
        conversation.status = m.QUEUED
        conversation.team = team
        conversation.escalation_reason = reason[:500]
        conversation.queued_at = at
        conversation.wait_started_at = at
        conversation.agent_sub = None
        conversation.resolution_code = None
        conversation.summary = summary
        await session.flush()
        outcome = "queued"
    place = await standing(session=session, settings=settings, conversation=conversation)
    assert conversation.team is not None
    text = (
        standing_text(team=conversation.team, protocol=conversation.protocol, place=place)
        if place
        else "Um atendente já está com a sua conversa."
    )
    payload: dict[str, object] = {"type": "queue", "team": conversation.team}
    if place:
        payload.update(position=place.position, estimated_wait_minutes=place.estimated_wait_minutes)
    notice = await conversation_service.add_message(
        session=session, conversation_id=conversation.id, role="system", text_=text, payload=payload
    )
    return EscalationResult(notice, conversation.team, outcome)


def record_escalation(result: EscalationResult) -> None:
    """Count a committed escalation: a new waiter, or a citizen who found no queue."""
    if result.outcome == "queued":
        metrics.ESCALATIONS.labels(team=result.team).inc()
    elif result.outcome != "waiting":
        metrics.ESCALATIONS_REFUSED.labels(team=result.team, reason=result.outcome).inc()


async def list_queue(*, session: AsyncSession, team: str | None) -> list[m.Conversation]:
    query = select(m.Conversation).where(m.Conversation.status == m.QUEUED)
    if team:
        query = query.where(m.Conversation.team == team)
    rows = await session.execute(query.order_by(m.Conversation.queued_at, m.Conversation.id))
    return list(rows.scalars())


async def get_conversation(
    *, session: AsyncSession, conversation_id: uuid.UUID, for_update: bool = False
) -> m.Conversation:
    """The conversation; ``for_update`` locks its row (write paths only: a read replica, a hot
    standby, refuses ``SELECT … FOR UPDATE``)."""
    conversation = await session.get(m.Conversation, conversation_id, with_for_update=for_update)
    if conversation is None:
        raise NotFoundError("Conversa não encontrada.")
    # The clerk's requests are logged with the attendance they act on, as the citizen's are.
    bind_conversation(protocol=conversation.protocol, conversation_id=conversation.id)
    return conversation


def ensure_can_read(conversation: m.Conversation, clerk: Clerk) -> None:
    """What a clerk may read: conversations that reached level 2 in a team they work (or
    supervise), and those they hold or held. Every reader goes through here (the agent API,
    the console's live view).

    A conversation only the bot has seen is none of a clerk's business (LGPD necessity): it
    answers 404 like an unknown one, so ids reveal nothing. Admins see all.
    """
    if clerk.admin or (
        conversation.agent_sub is not None and conversation.agent_sub == clerk.subject
    ):
        return
    if conversation.team is None:
        raise NotFoundError("Conversa não encontrada.")
    if not clerk.sees_team(conversation.team):
        raise ForbiddenError("Esta conversa é de outra equipe.")


async def claim(
    *,
    session: AsyncSession,
    conversation_id: uuid.UUID,
    agent_sub: str,
    agent_name: str | None,
    teams: frozenset[str] | None = None,
) -> tuple[m.Conversation, m.Message]:
    """Take a queued conversation. One UPDATE decides between clerks who click at once: the
    first wins, the others get a conflict. ``teams``: the queues the clerk may take from
    (``None``: every queue)."""
    if teams is not None:
        current = await session.get(m.Conversation, conversation_id)
        if current is None:
            raise NotFoundError("Conversa não encontrada.")
        if current.team not in teams:
            raise ForbiddenError("Esta conversa está na fila de outra equipe.")
    claimed = (
        await session.execute(
            update(m.Conversation)
            .where(m.Conversation.id == conversation_id, m.Conversation.status == m.QUEUED)
            .values(status=m.HUMAN, agent_sub=agent_sub, claimed_at=func.now())
            .returning(m.Conversation.id)
        )
    ).scalar_one_or_none()
    if claimed is None:
        await get_conversation(session=session, conversation_id=conversation_id, for_update=True)
        raise ConflictError(
            "A conversa não está aguardando na fila (já foi assumida ou encerrada)."
        )
    conversation = await get_conversation(
        session=session, conversation_id=conversation_id, for_update=True
    )
    await session.refresh(conversation)
    text = (
        f"Atendente entrou na conversa: {agent_name}."
        if agent_name
        else ("Atendente entrou na conversa.")
    )
    message = await conversation_service.add_message(
        session=session,
        conversation_id=conversation.id,
        role="system",
        text_=text,
        payload={"type": "agent_joined", "agent_name": agent_name},
    )
    return conversation, message


def record_claim(conversation: m.Conversation) -> None:
    """Count a committed claim and how long the citizen waited in this team's queue (since the
    escalation, or since the transfer that brought them here)."""
    team = as_team(conversation.team)
    metrics.ESCALATION_CLAIMS.labels(team=team).inc()
    waiting_since = conversation.wait_started_at or conversation.queued_at
    if waiting_since is not None and conversation.claimed_at is not None:
        waited = (conversation.claimed_at - waiting_since).total_seconds()
        metrics.ESCALATION_WAIT.labels(team=team).observe(max(0.0, waited))


def record_closure(*, team: str | None, code: str) -> None:
    """Count a committed closure: a clerk's, by resolution code, or a queued conversation that
    ended without a clerk (the citizen left, or waited past the maximum)."""
    if code in ABANDONMENT_REASONS:
        metrics.ESCALATION_ABANDONMENTS.labels(
            team=as_team(team), reason=ABANDONMENT_REASONS[code]
        ).inc()
    else:
        metrics.ESCALATION_CLOSURES.labels(team=as_team(team), code=code).inc()


def ensure_owner(conversation: m.Conversation, agent_sub: str, *, is_admin: bool) -> None:
    if conversation.status != m.HUMAN:
        raise ConflictError("Assuma a conversa antes de responder, transferir ou encerrar.")
    if conversation.agent_sub != agent_sub and not is_admin:
        raise ForbiddenError("Esta conversa pertence a outro(a) atendente.")


async def transfer(
    *, session: AsyncSession, settings: CoreSettings, conversation: m.Conversation, team: str
) -> m.Message:
    # The citizen keeps the original queued_at: a transfer must not send them to the back.
    conversation.status = m.QUEUED
    conversation.team = team
    conversation.agent_sub = None
    conversation.claimed_at = None
    conversation.wait_started_at = conversation_service.now_utc()
    await session.flush()
    place = await standing(session=session, settings=settings, conversation=conversation)
    assert place is not None
    return await conversation_service.add_message(
        session=session,
        conversation_id=conversation.id,
        role="system",
        text_="Sua conversa foi transferida. "
        + standing_text(team=team, protocol=conversation.protocol, place=place),
        payload={
            "type": "queue",
            "team": team,
            "position": place.position,
            "estimated_wait_minutes": place.estimated_wait_minutes,
        },
    )


async def resolve(*, session: AsyncSession, conversation: m.Conversation, code: str) -> m.Message:
    if code not in RESOLUTION_CODES:
        raise ConflictError(f"Código de encerramento desconhecido: {code}.")
    return await _close(
        session=session,
        conversation=conversation,
        code=code,
        text=(
            f"Atendimento encerrado. Protocolo {conversation.protocol}. "
            "Se precisar de algo mais, é só escrever."
        ),
    )


async def leave_queue(*, session: AsyncSession, conversation: m.Conversation) -> m.Message:
    """The citizen gives up waiting: out of the queue, back to the bot, protocol kept."""
    if conversation.status != m.QUEUED:
        raise ConflictError(
            "Você não está na fila: um(a) atendente já está com a conversa ou ela foi encerrada."
        )
    return await _close(
        session=session,
        conversation=conversation,
        code=LEFT_QUEUE,
        text=(
            f"Você saiu da fila do atendimento humano. Seu protocolo {conversation.protocol} "
            "continua valendo; o assistente segue à disposição por aqui."
        ),
    )


async def expire_waits(
    *, session: AsyncSession, settings: CoreSettings, at: dt.datetime | None = None
) -> list[tuple[m.Conversation, m.Message]]:
    """Close the conversations that waited longer than ``escalation_max_wait_minutes`` for a
    clerk, each with a message that gives the protocol to follow up with. Rows another worker
    is closing are skipped (SKIP LOCKED), so replicas can run this at once."""
    at = at or conversation_service.now_utc()
    limit = at - dt.timedelta(minutes=settings.escalation_max_wait_minutes)
    rows = await session.execute(
        select(m.Conversation)
        .where(
            m.Conversation.status == m.QUEUED,
            func.coalesce(m.Conversation.wait_started_at, m.Conversation.queued_at) < limit,
        )
        .order_by(m.Conversation.queued_at)
        .limit(200)
        .with_for_update(skip_locked=True)
    )
    closed = []
    for conversation in rows.scalars():
        notice = await _close(
            session=session,
            conversation=conversation,
            code=EXPIRED,
            text=(
                "Pedimos desculpas: nenhum(a) atendente conseguiu assumir a sua conversa em "
                f"{settings.escalation_max_wait_minutes} minutos. O seu pedido fica registrado "
                f"com o protocolo {conversation.protocol}. Escreva de novo quando quiser, "
                "informando esse número, e retomamos de onde parou."
            ),
        )
        closed.append((conversation, notice))
    return closed


async def _close(
    *, session: AsyncSession, conversation: m.Conversation, code: str, text: str
) -> m.Message:
    conversation.status = m.RESOLVED
    conversation.resolved_at = conversation_service.now_utc()
    conversation.resolution_code = code
    await session.flush()
    return await conversation_service.add_message(
        session=session,
        conversation_id=conversation.id,
        role="system",
        text_=text,
        # The closure record the supervisor counts (team and code as they were at closing).
        payload={"type": "resolved", "code": code, "team": conversation.team},
    )
