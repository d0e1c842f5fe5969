"""WebSocket pushes under a real uvicorn server: bot replies and agent replies arrive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .conftest import Harness, next_event


async def test_ws_receives_bot_and_agent_replies(live: tuple[Harness, str]) -> None:
    h, address = live
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        created = (await http.post("/api/v1/conversations", json={"channel": "web"})).json()
        conversation_id, token = created["id"], created["token"]
        async with connect(f"ws://{address}/api/v1/conversations/{conversation_id}/ws") as ws:
            await ws.send(json.dumps({"token": token}))
            assert (await next_event(ws, "ready"))["conversation_id"] == conversation_id
            posted = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"text": "preciso falar com alguém"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert posted.status_code == 202
            await h.bot_reply(posted.json()["id"], "Claro! Um momento.")
            await h.deliver_outbound()
            event = await next_event(ws, "messages")
            assert [x["text"] for x in event["messages"]] == ["Claro! Um momento."]
            assert event["messages"][0]["role"] == "bot"

            await ws.send(json.dumps({"type": "ping"}))
            assert (await next_event(ws, "pong"))["type"] == "pong"


async def test_ws_catches_up_on_replies_whose_events_were_lost(live: tuple[Harness, str]) -> None:
    """A reply published while the API's subscription was down (a Redis failover) never comes
    as an event: once the hub subscribes again, the socket reads it from the primary."""
    h, address = live
    conversation_id, token, _ = await h.open_conversation()
    async with connect(f"ws://{address}/api/v1/conversations/{conversation_id}/ws") as ws:
        await ws.send(json.dumps({"token": token}))
        await next_event(ws, "ready")
        await h.store_and_lose_its_event(conversation_id, "bot", "Resposta cujo evento se perdeu.")
        event = await next_event(ws, "messages")
        assert [x["text"] for x in event["messages"]] == ["Resposta cujo evento se perdeu."]


async def test_ws_rejects_missing_or_foreign_token(live: tuple[Harness, str]) -> None:
    h, address = live
    first_id, _, _ = await h.open_conversation()
    _, other_token, _ = await h.open_conversation()
    async with connect(f"ws://{address}/api/v1/conversations/{first_id}/ws") as ws:
        await ws.send(json.dumps({"token": other_token}))
        error = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert error["error"]["code"] == "forbidden"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
    async with connect(f"ws://{address}/api/v1/conversations/{first_id}/ws") as ws:
        await ws.send("not json")
        error = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert error["error"]["code"] == "not_authenticated"


async def test_ws_accepts_bearer_header(live: tuple[Harness, str]) -> None:
    h, address = live
    conversation_id, token, _ = await h.open_conversation()
    async with connect(
        f"ws://{address}/api/v1/conversations/{conversation_id}/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        assert (await next_event(ws, "ready"))["type"] == "ready"


async def closed_with(ws: Any) -> int:
    """The close code the server sent (after any error frames it sent first)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout=10)
    except ConnectionClosed as closed:
        return int(closed.rcvd.code) if closed.rcvd is not None else -1


async def test_ws_refuses_what_a_client_should_not_send(live: tuple[Harness, str]) -> None:
    """Binary frames, huge frames, silence and wrong header tokens each get their close code
    (once: a KeyError, a 16 MiB frame, a 10 s window, an accepted socket)."""
    h, address = live
    conversation_id, token, _ = await h.open_conversation()
    url = f"ws://{address}/api/v1/conversations/{conversation_id}/ws"
    async with connect(url) as ws:
        await ws.send(b"\x00\x01 binary")
        assert await closed_with(ws) == 1003
    async with connect(url) as ws:  # authenticated, then binary
        await ws.send(json.dumps({"token": token}))
        await next_event(ws, "ready")
        await ws.send(b"\x00")
        assert await closed_with(ws) == 1003
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"token": token, "x": "a" * 100_000}))
        assert await closed_with(ws) == 1009  # uvicorn's frame limit (ws_max_size)
    async with connect(url) as ws:  # says nothing within ws_auth_timeout_s
        assert await closed_with(ws) == 4401
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": "Bearer errado"}):
            pass
    assert refused.value.response.status_code == 403  # refused before the handshake


async def test_ws_connections_are_capped_per_conversation(live: tuple[Harness, str]) -> None:
    h, address = live
    conversation_id, token, _ = await h.open_conversation()
    url = f"ws://{address}/api/v1/conversations/{conversation_id}/ws"
    headers = {"Authorization": f"Bearer {token}"}
    allowed = h.settings.ws_max_per_conversation
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(connect(url, additional_headers=headers))
            for _ in range(allowed)
        ]
        for ws in sockets:
            await next_event(ws, "ready")
        async with connect(url, additional_headers=headers) as one_too_many:
            assert await closed_with(one_too_many) == 1008
        await sockets[-1].send(json.dumps({"type": "ping"}))
        assert (await next_event(sockets[-1], "pong"))["type"] == "pong"


async def test_erasure_closes_the_conversations_sockets(live: tuple[Harness, str]) -> None:
    """A socket authenticated before an LGPD erasure must not keep receiving (or exist)."""
    h, address = live
    conversation_id, token, protocol = await h.open_conversation()
    url = f"ws://{address}/api/v1/conversations/{conversation_id}/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await next_event(ws, "ready")
        erased = await h.client.post(
            "/api/v1/admin/lgpd/erasure",
            json={"protocol": protocol},
            headers=h.oidc.headers("dpo", ("admin",)),
        )
        assert erased.status_code == 200
        assert await closed_with(ws) == 4403


async def test_the_clerks_socket_refuses_binary_frames(live: tuple[Harness, str]) -> None:
    """The console's socket had the citizens' looseness too (a KeyError on a binary frame)."""
    h, address = live
    async with connect(f"ws://{address}/api/v1/agent/ws") as ws:
        await ws.send(json.dumps({"token": h.oidc.token("ana", ("agent", "equipe:geral"))}))
        await next_event(ws, "hello")
        await ws.send(b"\x00\x01")
        assert await closed_with(ws) == 1003
    async with connect(f"ws://{address}/api/v1/agent/ws") as ws:
        await ws.send(b"\x00")  # instead of the token
        assert await closed_with(ws) == 4401
