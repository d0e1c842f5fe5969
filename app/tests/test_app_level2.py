"""Level 2 as the clerk console uses it: the queue rules of the custom resource (queueLimit,
maxWaitMinutes, a citizen who leaves), the bot's summary, the live board pushed over the clerks'
WebSocket, two clerks racing for one conversation, supervision, session expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
from assistente_app.conversations import models as m
from assistente_app.worker.handlers import store_bot_turn
from assistente_app.worker.runner import expire_waits_once
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .conftest import Harness, SettingsFactory, running_app

SUPPORT = ("agent", "equipe:suporte_tecnico")
SUPERVISOR = ("supervisor", "agent")


async def escalate(
    h: Harness,
    team: str = "suporte_tecnico",
    *,
    intent: str = "",
    case_number: str = "",
    sources: list[dict[str, Any]] | None = None,
) -> tuple[str, str, str]:
    """A citizen talks to the bot (which may quote knowledge articles), then is handed over."""
    conversation_id, token, protocol = await h.open_conversation()
    if sources:
        asked = (await h.post_message(conversation_id, token, "como emito certidão?")).json()
        await store_bot_turn(
            h.worker,
            message_id=uuid.UUID(asked["id"]),
            items=[
                {"recipient_id": "x", "text": "Veja: ..."},
                {"recipient_id": "x", "custom": {"type": "sources", "sources": sources}},
            ],
        )
    posted = (await h.post_message(conversation_id, token, "quero um atendente")).json()
    escalation: dict[str, Any] = {"type": "escalation", "team": team, "reason": "pedido"}
    if intent:
        escalation["intent"] = intent
    if case_number:
        escalation["case_number"] = case_number
    await store_bot_turn(
        h.worker,
        message_id=uuid.UUID(posted["id"]),
        items=[{"recipient_id": "x", "text": "Vou transferir."}, {"custom": escalation}],
    )
    return conversation_id, token, protocol


async def status_of(h: Harness, conversation_id: str) -> m.Conversation:
    async with h.worker.db.read_sessions() as session:
        conversation = await session.get(m.Conversation, uuid.UUID(conversation_id))
    assert conversation is not None
    return conversation


async def test_the_queue_limit_turns_away_new_escalations_with_the_protocol(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async with running_app(make_settings(escalation_queue_limit=1), oidc) as h:
        first_id, _, _ = await escalate(h, "servicos_portal")
        second_id, token, protocol = await escalate(h, "servicos_portal")
        other_team_id, _, _ = await escalate(h, "geral")
        assert (await status_of(h, first_id)).status == m.QUEUED
        assert (await status_of(h, other_team_id)).status == m.QUEUED  # the limit is per team
        refused = await status_of(h, second_id)
        assert refused.status == m.BOT  # still with the bot, protocol kept
        notice = (await h.history(second_id, token))["messages"][-1]
        assert notice["payload"] == {"type": "queue_full", "team": "servicos_portal"}
        assert "está cheia" in notice["text"]
        assert protocol in notice["text"]


async def test_a_conversation_waiting_past_the_maximum_is_closed_with_its_protocol(
    make_settings: SettingsFactory, oidc: Any
) -> None:
    async with running_app(make_settings(escalation_max_wait_minutes=30), oidc) as h:
        old_id, old_token, old_protocol = await escalate(h)
        recent_id, _, _ = await escalate(h)
        async with h.worker.db.write_sessions() as session:
            conversation = await session.get(m.Conversation, uuid.UUID(old_id))
            assert conversation is not None
            conversation.wait_started_at = conversation.queued_at = dt.datetime.now(
                dt.UTC
            ) - dt.timedelta(minutes=31)
            await session.commit()

        # At least one: the session's shared database may hold other tests' queued
        # conversations that are past 30 minutes by now. The two below are what this test owns.
        assert await expire_waits_once(h.worker) >= 1
        expired = await status_of(h, old_id)
        assert (expired.status, expired.resolution_code) == (m.RESOLVED, "tempo_esgotado")
        assert (await status_of(h, recent_id)).status == m.QUEUED
        assert await h.deliver_outbound() >= 1
        notice = (await h.history(old_id, old_token))["messages"][-1]
        assert "30 minutos" in notice["text"]
        assert old_protocol in notice["text"]
        # The citizen writes again: the bot answers (the message is queued for Rasa).
        again = (await h.post_message(old_id, old_token, "voltei")).json()
        assert again["status"] == "accepted"


async def test_a_transfer_restarts_the_wait_clock_but_keeps_the_place(harness: Harness) -> None:
    conversation_id, _, _ = await escalate(harness)
    clerk = harness.oidc.headers("ana", (*SUPPORT, "equipe:geral"))
    await harness.client.post(f"/api/v1/agent/conversations/{conversation_id}/claim", headers=clerk)
    before = await status_of(harness, conversation_id)
    moved = await harness.client.post(
        f"/api/v1/agent/conversations/{conversation_id}/transfer",
        json={"team": "geral"},
        headers=clerk,
    )
    assert moved.status_code == 200
    after = await status_of(harness, conversation_id)
    assert after.queued_at == before.queued_at
    assert after.wait_started_at is not None
    assert before.wait_started_at is not None
    assert after.wait_started_at > before.wait_started_at


async def test_a_citizen_leaves_the_queue_from_the_widget_or_by_writing_sair(
    harness: Harness,
) -> None:
    conversation_id, token, protocol = await escalate(harness)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/conversations/{conversation_id}/leave-queue"
    left = await harness.client.post(url, headers=auth)
    assert left.status_code == 200, left.text
    assert left.json() == {"protocol": protocol, "status": "resolved"}
    assert (await status_of(harness, conversation_id)).resolution_code == "desistencia"
    notice = (await harness.history(conversation_id, token))["messages"][-1]
    assert "Você saiu da fila" in notice["text"]
    assert protocol in notice["text"]
    again = await harness.client.post(url, headers=auth)
    assert again.status_code == 409
    assert "não está na fila" in again.json()["error"]["message"]
    stranger = await harness.client.post(url, headers={"Authorization": "Bearer outro"})
    assert stranger.status_code == 403

    # On a text channel, writing "sair" while waiting does the same.
    typed_id, typed_token, _ = await escalate(harness)
    posted = await harness.post_message(typed_id, typed_token, "Sair da fila!")
    assert posted.status_code == 202
    assert (await status_of(harness, typed_id)).resolution_code == "desistencia"


async def test_the_clerk_sees_the_bots_summary(harness: Harness) -> None:
    sources = [
        {"title": "Certidões", "section": "Negativa", "path": "knowledge/certidoes.md",
         "confidence": 0.9},
        {"title": "Custas", "section": "Guia", "path": "knowledge/custas.md", "confidence": 0.5},
    ]  # fmt: skip
    conversation_id, _, _ = await escalate(
        harness,
        intent="consultar_processo",
        case_number="0000832-35.2018.4.01.3202",
        sources=sources,
    )
    clerk = harness.oidc.headers("ana", SUPPORT)
    queue = (await harness.client.get("/api/v1/agent/queue", headers=clerk)).json()
    [item] = [i for i in queue if i["conversation_id"] == conversation_id]
    assert item["summary"] == {
        "intent": "consultar_processo",
        "case_number": "0000832-35.2018.4.01.3202",
        "articles": [
            {"title": "Certidões", "path": "knowledge/certidoes.md"},
            {"title": "Custas", "path": "knowledge/custas.md"},
        ],
    }
    detail = (
        await harness.client.get(f"/api/v1/agent/conversations/{conversation_id}", headers=clerk)
    ).json()
    assert detail["summary"] == item["summary"]
    assert [x["role"] for x in detail["messages"]] == ["user", "bot", "user", "bot", "system"]


async def test_two_clerks_racing_for_one_conversation_one_wins(harness: Harness) -> None:
    conversation_id, token, _ = await escalate(harness)
    url = f"/api/v1/agent/conversations/{conversation_id}/claim"
    clerks = [harness.oidc.headers(name, SUPPORT) for name in ("ana", "diego", "eva", "caio")]
    results = await asyncio.gather(*(harness.client.post(url, headers=c) for c in clerks))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409]
    await harness.deliver_outbound()
    joined = [
        x for x in (await harness.history(conversation_id, token))["messages"]
        if (x["payload"] or {}).get("type") == "agent_joined"
    ]  # fmt: skip
    assert len(joined) == 1
    assert joined[0]["text"].startswith("Atendente entrou na conversa")


async def test_resolution_codes_are_required_and_counted_for_the_supervisor(
    harness: Harness,
) -> None:
    supervisor = harness.oidc.headers("sofia", SUPERVISOR)

    async def figures() -> dict[str, Any]:
        supervision = (
            await harness.client.get("/api/v1/agent/supervision", headers=supervisor)
        ).json()
        return dict(next(t for t in supervision["teams"] if t["team"] == "orientacao_processual"))

    before = await figures()
    conversation_id, token, _ = await escalate(harness, "orientacao_processual")
    clerk = harness.oidc.headers("carla", ("agent", "equipe:orientacao_processual"))
    await harness.client.post(f"/api/v1/agent/conversations/{conversation_id}/claim", headers=clerk)
    bad = await harness.client.post(
        f"/api/v1/agent/conversations/{conversation_id}/resolve",
        json={"code": "sumiu"},
        headers=clerk,
    )
    assert bad.status_code == 422
    closed = await harness.client.post(
        f"/api/v1/agent/conversations/{conversation_id}/resolve",
        json={"code": "orientado"},
        headers=clerk,
    )
    assert closed.status_code == 200
    assert (await status_of(harness, conversation_id)).resolution_code == "orientado"

    assert (await harness.client.get("/api/v1/agent/supervision", headers=clerk)).status_code == 403
    # The citizen writes again afterwards (back with the bot): the closure still counts.
    assert (await harness.post_message(conversation_id, token, "obrigado")).status_code == 202
    gave_up_id, gave_up_token, _ = await escalate(harness, "orientacao_processual")
    await harness.client.post(
        f"/api/v1/conversations/{gave_up_id}/leave-queue",
        headers={"Authorization": f"Bearer {gave_up_token}"},
    )
    after = await figures()
    assert after["closed_today"] == before["closed_today"] + 1
    assert after["unattended_today"] == before["unattended_today"] + 1
    catalog = (await harness.client.get("/api/v1/agent/catalog", headers=clerk)).json()
    assert {c["id"] for c in catalog["resolution_codes"]} == {
        "resolvido", "orientado", "sem_resposta", "fora_do_escopo"
    }  # fmt: skip
    assert catalog["canned_answers"]
    assert all(a["text"] for a in catalog["canned_answers"])
    me = (await harness.client.get("/api/v1/agent/me", headers=clerk)).json()
    assert me["teams"] == ["orientacao_processual"]
    assert me["supervisor"] is False


# --- the clerks' WebSocket ------------------------------------------------------------------


async def next_of(ws: ClientConnection, kind: str, within: float = 30) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=within))
        if event.get("type") == kind:
            return dict(event)


async def close_code(ws: ClientConnection) -> int:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout=30)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else -1


async def board_where(ws: ClientConnection, condition: Any, within: float = 30) -> dict[str, Any]:
    """The first board pushed that satisfies ``condition`` (no reload, no polling)."""
    while True:
        board = await next_of(ws, "board", within)
        if condition(board):
            return board


async def test_the_board_is_pushed_to_clerks_and_follows_the_open_conversation(
    live: tuple[Harness, str],
) -> None:
    h, address = live
    url = f"ws://{address}/api/v1/agent/ws"
    async with connect(url) as ana, connect(url) as sofia, connect(url) as outsider:
        await ana.send(json.dumps({"token": h.oidc.token("ana", SUPPORT)}))
        await sofia.send(json.dumps({"token": h.oidc.token("sofia", SUPERVISOR)}))
        await outsider.send(json.dumps({"token": h.oidc.token("bruno", ("agent", "equipe:geral"))}))
        hello = await next_of(ana, "hello")
        assert hello["clerk"]["teams"] == ["suporte_tecnico"]
        await next_of(ana, "board")

        conversation_id, token, protocol = await escalate(h)
        board = await board_where(
            ana, lambda b: any(i["protocol"] == protocol for i in b["queues"])
        )
        item = next(i for i in board["queues"] if i["protocol"] == protocol)
        assert item["channel"] == "web"
        assert item["team_label"] == "Suporte Técnico"
        assert item["position"] >= 1
        assert item["queued_at"]
        # A supervisor sees every team, the clerks online and the figures.
        supervised = await board_where(
            sofia,
            lambda b: (
                any(i["protocol"] == protocol for i in b["queues"])
                and len(b["supervision"]["clerks_online"]) >= 3
            ),
        )
        names = {c["name"] for c in supervised["supervision"]["clerks_online"]}
        assert {"ana", "sofia", "bruno"} <= names
        # Another team's clerk does not see it.
        board = await next_of(outsider, "board")
        assert all(i["protocol"] != protocol for i in board["queues"])

        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            await ana.send(json.dumps({"type": "watch", "conversation_id": conversation_id}))
            claimed = await http.post(
                f"/api/v1/agent/conversations/{conversation_id}/claim",
                headers=h.oidc.headers("ana", SUPPORT),
            )
            assert claimed.status_code == 200
            board = await board_where(
                ana, lambda b: any(i["protocol"] == protocol for i in b["mine"])
            )
            assert all(i["protocol"] != protocol for i in board["queues"])
            # The citizen writes: the clerk who has the conversation open sees it at once.
            await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"text": "ainda estou aqui"},
                headers={"Authorization": f"Bearer {token}"},
            )
            event = await next_of(ana, "messages")
            assert event["messages"][0]["text"] == "ainda estou aqui"
            assert event["messages"][0]["role"] == "user"


async def test_a_clerk_watching_a_conversation_gets_what_lost_events_carried(
    live: tuple[Harness, str],
) -> None:
    """Events published while an API's subscription is down (a Redis failover) are gone: once
    the hub subscribes again, the clerk's open conversation reads what it missed from the
    primary."""
    h, address = live
    conversation_id, token, _ = await escalate(h)
    async with connect(f"ws://{address}/api/v1/agent/ws") as ana:
        await ana.send(json.dumps({"token": h.oidc.token("ana", SUPPORT)}))
        await next_of(ana, "hello")
        await watch_after_history(ana, h, conversation_id, token)
        await h.post_message(conversation_id, token, "primeira")
        assert (await next_of(ana, "messages"))["messages"][0]["text"] == "primeira"
        # Stored, but its event never published (as if Redis had been failing over).
        await h.store_and_lose_its_event(conversation_id, "user", "a que se perdeu")
        caught_up = await next_of(ana, "messages")
        assert [m["text"] for m in caught_up["messages"]] == ["a que se perdeu"]


async def watch_after_history(
    ws: ClientConnection, h: Harness, conversation_id: str, token: str
) -> None:
    """What the console does: load the history, then watch from its last message."""
    history = await h.history(conversation_id, token)
    last_seq = max(message["seq"] for message in history["messages"])
    await ws.send(
        json.dumps({"type": "watch", "conversation_id": conversation_id, "after_seq": last_seq})
    )


async def test_a_message_stored_between_the_history_and_the_watch_arrives_once(
    live: tuple[Harness, str],
) -> None:
    """The console reads the history, then subscribes: a message the citizen sends in between
    is read from the primary when the watch starts, and is not sent again as an event."""
    h, address = live
    conversation_id, token, _ = await escalate(h)
    history = await h.history(conversation_id, token)
    last_seq = max(message["seq"] for message in history["messages"])
    await h.post_message(conversation_id, token, "entre o histórico e a inscrição")
    async with connect(f"ws://{address}/api/v1/agent/ws") as ana:
        await ana.send(json.dumps({"token": h.oidc.token("ana", SUPPORT)}))
        await next_of(ana, "hello")
        watch = {"type": "watch", "conversation_id": conversation_id, "after_seq": last_seq}
        await ana.send(json.dumps(watch))
        caught_up = await next_of(ana, "messages")
        assert [m["text"] for m in caught_up["messages"]] == ["entre o histórico e a inscrição"]
        await h.post_message(conversation_id, token, "depois")
        later = await next_of(ana, "messages")
        assert [m["text"] for m in later["messages"]] == ["depois"]


async def test_a_watch_with_a_bad_after_seq_is_a_watch_from_now(
    live: tuple[Harness, str],
) -> None:
    """A sequence number that is not a non-negative int64 is ignored: no error, and no replay of
    the history (as -1 or `true` read as a number would give)."""
    h, address = live
    conversation_id, token, _ = await escalate(h)
    async with connect(f"ws://{address}/api/v1/agent/ws") as ana:
        await ana.send(json.dumps({"token": h.oidc.token("ana", SUPPORT)}))
        await next_of(ana, "hello")
        for bad in (2**63, -1, "7", True, None, 1.5):
            watch = {"type": "watch", "conversation_id": conversation_id, "after_seq": bad}
            await ana.send(json.dumps(watch))
        await watch_after_history(ana, h, conversation_id, token)
        await h.post_message(conversation_id, token, "agora")
        event = await next_of(ana, "messages")
        assert [m["text"] for m in event["messages"]] == ["agora"]


async def test_the_clerk_socket_closes_when_the_token_expires(live: tuple[Harness, str]) -> None:
    h, address = live
    async with connect(f"ws://{address}/api/v1/agent/ws") as ws:
        # Valid for the handshake, expired a moment later, never refreshed.
        token = h.oidc.token("ana", SUPPORT, expires_in=8)
        await ws.send(json.dumps({"token": token}))
        await next_of(ws, "hello")
        assert await close_code(ws) == 4401


async def test_the_clerk_socket_refuses_missing_and_foreign_tokens(
    live: tuple[Harness, str],
) -> None:
    h, address = live
    for first_frame, code in (
        ({"token": ""}, 4401),
        ({"token": "não-é-um-jwt"}, 4401),
        ({"token": h.oidc.token("cidadao", ("user",))}, 4403),
    ):
        async with connect(f"ws://{address}/api/v1/agent/ws") as ws:
            await ws.send(json.dumps(first_frame))
            assert await close_code(ws) == code
