"""Human level 2: escalation from a Rasa custom payload, queue position and wait, agent API
(OIDC JWT verified against a JWKS served over HTTP), silence of the bot, service hours."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from assistente_app.auth.oidc import JwksVerifier
from assistente_app.conversations import models as m
from assistente_app.core.settings import WEEKDAYS
from assistente_app.escalation.service import WEEKDAY_NAMES, is_open, next_opening
from assistente_app.queue.streams import Entry
from assistente_app.settings import Settings
from assistente_app.worker.handlers import handle_inbound, store_bot_turn
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from sqlalchemy import select

from .conftest import AUDIENCE, ISSUER, Harness, SettingsFactory, running_app, wait_for

ESCALATION = {
    "recipient_id": "x",
    "custom": {"type": "escalation", "team": "suporte_tecnico", "reason": "erro no login"},
}
TRANSFER_TEXT = {"recipient_id": "x", "text": "Vou transferir você para um atendente."}


async def escalate(h: Harness, team: str = "suporte_tecnico") -> tuple[str, str, str]:
    conversation_id, token, protocol = await h.open_conversation()
    posted = (await h.post_message(conversation_id, token, "não consigo entrar")).json()
    escalation = {**ESCALATION, "custom": {**ESCALATION["custom"], "team": team}}  # type: ignore[dict-item]
    await store_bot_turn(
        h.worker, message_id=uuid.UUID(posted["id"]), items=[TRANSFER_TEXT, escalation]
    )
    return conversation_id, token, protocol


async def test_escalation_queue_position_and_agent_flow(harness: Harness) -> None:
    team = "orientacao_processual"
    first_id, first_token, _ = await escalate(harness, team)
    second_id, second_token, second_protocol = await escalate(harness, team)

    history = (await harness.history(second_id, second_token))["messages"]
    assert [x["role"] for x in history] == ["user", "bot", "system"]
    notice = history[-1]
    assert notice["payload"]["type"] == "queue"
    assert notice["payload"]["team"] == team
    position = notice["payload"]["position"]
    assert position >= 2  # behind the first one at least
    assert f"posição {position}" in notice["text"]
    assert second_protocol in notice["text"]

    status = (
        await harness.client.get(
            f"/api/v1/protocols/{second_protocol}",
            headers={"Authorization": f"Bearer {second_token}"},
        )
    ).json()
    assert status["status"] == "queued"
    assert status["queue_position"] == position
    assert status["estimated_wait_minutes"] == position * 6

    # Team roles (equipe:<team>) decide which queues a clerk sees and takes from.
    teams = ("agent", "equipe:orientacao_processual", "equipe:servicos_portal")
    agent = harness.oidc.headers("agente-ana", teams)
    outsider = harness.oidc.headers("agente-caio", ("agent", "equipe:suporte_tecnico"))
    assert (
        await harness.client.get(f"/api/v1/agent/queue?team={team}", headers=outsider)
    ).json() == []
    refused = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/claim", headers=outsider
    )
    assert refused.status_code == 403
    queue = (await harness.client.get(f"/api/v1/agent/queue?team={team}", headers=agent)).json()
    ids = [item["conversation_id"] for item in queue]
    assert ids.index(first_id) < ids.index(second_id)
    assert queue[ids.index(second_id)]["reason"] == "erro no login"

    assert harness.resources.hub is not None
    async with harness.resources.hub.subscribe(second_id) as live_events:
        claimed = await harness.client.post(
            f"/api/v1/agent/conversations/{first_id}/claim", headers=agent
        )
        # The citizen still waiting hears of the new position at once (pushed over WS).
        moved = await asyncio.wait_for(live_events.get(), timeout=10)
    assert moved["type"] == "queue"
    assert moved["position"] == position - 1
    assert moved["estimated_wait_minutes"] == (position - 1) * 6
    assert claimed.status_code == 200
    assert claimed.json()["status"] == "human"
    again = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/claim",
        headers=harness.oidc.headers("agente-bia", teams),
    )
    assert again.status_code == 409

    # The second citizen moved up one place.
    status = (
        await harness.client.get(
            f"/api/v1/protocols/{second_protocol}",
            headers={"Authorization": f"Bearer {second_token}"},
        )
    ).json()
    assert status["queue_position"] == position - 1

    # While a human owns it, the bot stays silent: the message is kept for the agent and
    # the worker does not call Rasa (none runs here; a call would raise TransientError).
    posted = (await harness.post_message(first_id, first_token, "ainda está aí?")).json()
    assert posted["status"] == "for_agent"

    reply = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/messages",
        json={"text": "Olá, sou a Ana. Vou verificar seu acesso."},
        headers=agent,
    )
    assert reply.status_code == 202
    other = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/messages",
        json={"text": "intromissão"},
        headers=harness.oidc.headers("agente-bia", teams),
    )
    assert other.status_code == 403
    await harness.deliver_outbound()
    history = (await harness.history(first_id, first_token))["messages"]
    assert [x["role"] for x in history][-3:] == ["system", "user", "agent"]
    assert history[-1]["text"] == "Olá, sou a Ana. Vou verificar seu acesso."

    transferred = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/transfer",
        json={"team": "servicos_portal"},
        headers=agent,
    )
    assert transferred.json()["status"] == "queued"
    assert transferred.json()["team"] == "servicos_portal"
    await harness.client.post(f"/api/v1/agent/conversations/{first_id}/claim", headers=agent)
    unexplained = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/resolve", headers=agent
    )
    assert unexplained.status_code == 422  # a resolution code is required
    resolved = await harness.client.post(
        f"/api/v1/agent/conversations/{first_id}/resolve",
        json={"code": "resolvido"},
        headers=agent,
    )
    assert resolved.json()["status"] == "resolved"
    # After resolution the bot answers again.
    posted = (await harness.post_message(first_id, first_token, "obrigado")).json()
    assert posted["status"] == "accepted"


async def test_message_queued_before_escalation_is_kept_for_the_agent(harness: Harness) -> None:
    conversation_id, _token, _ = await escalate(harness)
    async with harness.worker.db.write_sessions() as session:
        message = m.Message(
            id=uuid.uuid4(),
            conversation_id=uuid.UUID(conversation_id),
            role="user",
            text="mensagem em trânsito",
            status=m.ACCEPTED,
        )
        session.add(message)
        await session.commit()
    entry = Entry("s", "1-0", {"message_id": str(message.id), "conversation_id": conversation_id})
    await handle_inbound(harness.worker, entry)  # no Rasa call: the conversation is queued
    async with harness.worker.db.read_sessions() as session:
        status = await session.scalar(select(m.Message.status).where(m.Message.id == message.id))
    assert status == m.FOR_AGENT


async def test_outside_service_hours_citizen_is_told_when_to_return(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    # Open only on a weekday that is not today (in Brasília): closed right now, for sure.
    today = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).weekday()
    open_day = (today + 2) % 7
    settings = make_settings(
        service_days=WEEKDAYS[open_day], service_open=dt.time(8), service_close=dt.time(9)
    )
    async with running_app(settings, oidc) as h:
        conversation_id, token, protocol = await h.open_conversation()
        posted = (await h.post_message(conversation_id, token, "quero um atendente")).json()
        await store_bot_turn(
            h.worker, message_id=uuid.UUID(posted["id"]), items=[TRANSFER_TEXT, ESCALATION]
        )
        history = await h.history(conversation_id, token)
        notice = history["messages"][-1]
        assert history["status"] == "bot"
        assert notice["role"] == "system"
        assert notice["payload"]["type"] == "service_closed"
        assert f"{WEEKDAY_NAMES[open_day]}, das 08:00 às 09:00" in notice["text"]
        assert protocol in notice["text"]
        opening = dt.datetime.fromisoformat(notice["payload"]["next_opening"])
        assert opening.weekday() == open_day
        assert opening.hour == 8
        assert opening > dt.datetime.now(dt.UTC)


def test_next_opening_rules(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        service_days="mon,tue,wed,thu,fri", service_open=dt.time(8), service_close=dt.time(18)
    )
    tz = settings.tz
    friday_night = dt.datetime(2026, 11, 27, 19, 0, tzinfo=tz)
    assert next_opening(settings=settings, at=friday_night) == dt.datetime(
        2026, 11, 30, 8, 0, tzinfo=tz
    )
    tuesday_early = dt.datetime(2026, 11, 24, 6, 30, tzinfo=tz)
    assert next_opening(settings=settings, at=tuesday_early).hour == 8
    assert is_open(settings=settings, at=dt.datetime(2026, 11, 24, 10, 0, tzinfo=tz))
    assert not is_open(settings=settings, at=dt.datetime(2026, 11, 28, 10, 0, tzinfo=tz))


async def test_agent_api_requires_valid_jwt_with_role(harness: Harness) -> None:
    url = "/api/v1/agent/queue"
    assert (await harness.client.get(url)).status_code == 401
    citizen_like = harness.oidc.headers("cidadao", ("user",))
    assert (await harness.client.get(url, headers=citizen_like)).status_code == 403
    expired = harness.oidc.token(expires_in=-60)
    response = await harness.client.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expirado" in response.json()["error"]["message"]
    wrong_audience = harness.oidc.token(audience="outra-api")
    response = await harness.client.get(url, headers={"Authorization": f"Bearer {wrong_audience}"})
    assert response.status_code == 401
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = harness.oidc.token(key=foreign_key)
    response = await harness.client.get(url, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    unknown_kid = harness.oidc.token(key=foreign_key, kid="rotated-away")
    response = await harness.client.get(url, headers={"Authorization": f"Bearer {unknown_kid}"})
    assert response.status_code == 401
    requests_before = harness.oidc.requests
    good = await harness.client.get(url, headers=harness.oidc.headers())
    assert good.status_code == 200
    assert harness.oidc.requests == requests_before  # JWKS cached, not fetched per request


async def test_jwks_key_rotation_is_picked_up(oidc: Any) -> None:
    verifier = JwksVerifier(jwks_url=oidc.url, issuer=ISSUER, audience=AUDIENCE, min_refresh_s=0)
    first = await verifier.verify(oidc.token("agente-1", ("agent",)))
    assert first.roles == frozenset({"agent"})
    old_key, old_kid = oidc.key, oidc.kid
    try:
        oidc.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        oidc.kid = "test-key-2"
        rotated = await verifier.verify(oidc.token("agente-2", ("admin",)))
        assert rotated.subject == "agente-2"
        assert rotated.roles == frozenset({"admin"})
    finally:
        oidc.key, oidc.kid = old_key, old_kid


async def test_wrong_issuer_and_top_level_roles_are_refused(harness: Harness) -> None:
    url = "/api/v1/agent/queue"
    foreign_issuer = harness.oidc.token(issuer="http://127.0.0.1/realms/outro-tribunal")
    response = await harness.client.get(url, headers={"Authorization": f"Bearer {foreign_issuer}"})
    assert response.status_code == 401
    # Roles come from OIDC_ROLES_CLAIM only: a top-level "roles" claim grants nothing.
    sneaky = harness.oidc.token("cidadao", ("user",), extra={"roles": ["admin", "agent"]})
    response = await harness.client.get(url, headers={"Authorization": f"Bearer {sneaky}"})
    assert response.status_code == 403


async def test_agents_keep_working_on_cached_keys_while_the_jwks_is_down(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    """Ten clerks' requests at once, the identity provider hanging, the cache expired: every
    request is verified with the cached keys, and the key set is asked for once, not ten
    times in a row with a 5 s timeout each."""
    async with running_app(make_settings(oidc_jwks_cache_s=1), oidc) as h:
        headers = oidc.headers()
        assert (await h.client.get("/api/v1/agent/queue", headers=headers)).status_code == 200
        verifier = h.resources.verifier
        assert verifier is not None
        await wait_for(lambda: verifier.stale, within=5)
        oidc.down.set()
        try:
            fetches_before = verifier.fetches
            responses = await asyncio.gather(
                *(h.client.get("/api/v1/agent/queue", headers=headers) for _ in range(10))
            )
            assert [r.status_code for r in responses] == [200] * 10
            assert verifier.fetches - fetches_before <= 1
        finally:
            oidc.down.clear()


def test_production_without_issuer_or_audience_refuses_to_start(database_url: str) -> None:
    env = {
        **os.environ,
        "ASSISTENTE_ENVIRONMENT": "production",
        "ASSISTENTE_DATABASE_URL": database_url,
        "ASSISTENTE_REDIS_URL": "redis://127.0.0.1:1/0",
        "ASSISTENTE_RASA_URL": "http://127.0.0.1:1",
        "ASSISTENTE_OIDC_JWKS_URL": "http://127.0.0.1:1/certs",
    }
    api = Path(sys.executable).parent / "assistente-api"
    result = subprocess.run(
        [str(api), "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "ASSISTENTE_OIDC_ISSUER" in result.stderr
    assert "ASSISTENTE_OIDC_AUDIENCE" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ValidationError, match="ASSISTENTE_OIDC_ISSUER"):
        Settings(
            environment="production",
            database_url=database_url,
            redis_url="redis://x:6379/0",
            rasa_url="http://rasa:5005",
            oidc_jwks_url="http://sso/certs",
            oidc_audience="assistente-api",
        )


@pytest.fixture
def read_only_url(postgres_server: Any, database_url: str) -> str:
    """A reader that, like a hot standby, refuses anything but reads in every transaction
    (``SELECT … FOR UPDATE`` included): ``default_transaction_read_only`` on its role."""
    database = database_url.rsplit("/", 1)[1]
    role = "leitor_replica"
    postgres_server.execute(
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN PASSWORD 'leitura'; END IF; END$$;"
        f"ALTER ROLE {role} SET default_transaction_read_only = on;"
    )
    postgres_server.execute(
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}", database=database
    )
    return f"postgresql://{role}:leitura@{postgres_server.host}:{postgres_server.port}/{database}"


async def test_agent_reads_work_on_a_read_only_replica(
    make_settings: SettingsFactory, oidc: Any, read_only_url: str
) -> None:
    async with running_app(make_settings(database_read_url=read_only_url), oidc) as h:
        conversation_id, _, _ = await escalate(h)
        agent = oidc.headers("agente-replica", ("agent", "equipe:suporte_tecnico"))
        history = await h.client.get(
            f"/api/v1/agent/conversations/{conversation_id}/messages", headers=agent
        )
        assert history.status_code == 200, history.text
        queue = await h.client.get("/api/v1/agent/queue", headers=agent)
        assert queue.status_code == 200


async def test_agents_read_only_what_is_theirs_to_see(harness: Harness) -> None:
    """Enforced in escalation.service.ensure_can_read, which the agent API and the console's
    live view both go through."""
    bot_only_id, token, _ = await harness.open_conversation()
    await harness.post_message(bot_only_id, token, "meu CPF é 123.456.789-09")
    waiting_id, _, _ = await escalate(harness)
    held_id, _, _ = await escalate(harness)
    team = ("agent", "equipe:suporte_tecnico")
    ana = harness.oidc.headers("agente-ana", team)
    bia = harness.oidc.headers("agente-bia", team)
    other_team = harness.oidc.headers("agente-caio", ("agent", "equipe:servicos_portal"))
    supervisor = harness.oidc.headers("supervisora", ("agent", "supervisor"))
    admin = harness.oidc.headers("auditoria", ("admin",))
    claimed = await harness.client.post(f"/api/v1/agent/conversations/{held_id}/claim", headers=ana)
    assert claimed.status_code == 200

    async def status(conversation_id: str, headers: dict[str, str]) -> int:
        url = f"/api/v1/agent/conversations/{conversation_id}/messages"
        return (await harness.client.get(url, headers=headers)).status_code

    assert await status(bot_only_id, ana) == 404  # only the bot has seen it
    assert await status(bot_only_id, supervisor) == 404  # never reached level 2
    assert await status(waiting_id, bia) == 200  # waiting in her team's queue
    assert await status(waiting_id, other_team) == 403
    assert await status(held_id, ana) == 200  # hers
    assert await status(held_id, supervisor) == 200
    assert await status(bot_only_id, admin) == 200
    assert await status(str(uuid.uuid4()), ana) == 404  # the same answer as unknown ids
