"""WebSocket pushes under a real uvicorn server: bot replies and agent replies arrive."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

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
