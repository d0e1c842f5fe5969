"""The whole assistant, end to end, through real processes on 127.0.0.1:

    citizen (HTTP + WebSocket) -> API (assistente-api) -> PostgreSQL + Redis stream
    -> worker (assistente-worker) -> Rasa server -> action server -> DataJud fake / knowledge base
    -> worker -> Redis -> API -> WebSocket

One web conversation: a greeting, a case lookup with a valid CNJ number, one with an invalid
number, a knowledge question answered with its source, and an escalation to the level-2 queue.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.fake_datajud import SAMPLE_FOUND, FakeDataJud
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer
from websockets.asyncio.client import ClientConnection, connect

WAIT_S = 60.0


@pytest.fixture(scope="module")
def app_processes(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    rasa_stack: RasaStack,
) -> Iterator[AppProcesses]:
    """The API and the worker as their console scripts run them in production."""
    app = AppProcesses.for_tests(
        database_url=postgres_server.create_database("assistente_e2e"),
        redis_url=redis_server.url,
        rasa_url=rasa_stack.url,
        log_dir=state_dir() / "e2e",
    )
    try:
        yield app.start()
    finally:
        app.stop()


class Citizen:
    """A web-widget user: posts over HTTP, reads replies from the WebSocket."""

    def __init__(self, http: httpx.AsyncClient, ws: ClientConnection, conversation: dict[str, Any]):
        self.http = http
        self.ws = ws
        self.id = conversation["id"]
        self.token = conversation["token"]
        self.protocol = conversation["protocol"]

    async def say(
        self, text: str, until: Callable[[list[dict[str, Any]]], bool]
    ) -> list[dict[str, Any]]:
        """Post one message and collect the replies pushed on the WebSocket until `until` holds."""
        response = await self.http.post(
            f"/api/v1/conversations/{self.id}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 202, response.text
        replies: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT_S
        while not until(replies):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no complete reply to {text!r}; got {replies}"
            event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=remaining))
            if event.get("type") == "messages":
                replies += [m for m in event["messages"] if m["role"] in ("bot", "system")]
        return replies


def joined(replies: list[dict[str, Any]]) -> str:
    return "\n".join(reply["text"] for reply in replies)


def contains(*fragments: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda replies: all(fragment in joined(replies) for fragment in fragments)


@pytest.fixture
async def citizen(app_processes: AppProcesses) -> AsyncIterator[Citizen]:
    async with httpx.AsyncClient(base_url=app_processes.url, timeout=30) as http:
        created = await http.post("/api/v1/conversations", json={"channel": "web"})
        assert created.status_code == 201, created.text
        conversation = created.json()
        ws_url = app_processes.url.replace("http://", "ws://")
        async with connect(f"{ws_url}/api/v1/conversations/{conversation['id']}/ws") as ws:
            await ws.send(json.dumps({"token": conversation["token"]}))
            ready = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            assert ready["type"] == "ready"
            yield Citizen(http, ws, conversation)


async def test_citizen_conversation_through_the_whole_pipeline(
    citizen: Citizen,
    fake_datajud: FakeDataJud,
) -> None:
    # 1. Greeting: the menu of what the assistant does.
    replies = await citizen.say("oi, bom dia", contains("Assistente Digital"))
    assert "consultar o andamento de um processo" in joined(replies)

    # 2. Case lookup with a valid number: DataJud (local fake) queried, movements explained.
    requests_before = len(fake_datajud.requests)
    replies = await citizen.say(
        f"quero ver o andamento do processo {SAMPLE_FOUND}", contains("Encontrei o processo")
    )
    text = joined(replies)
    assert SAMPLE_FOUND in text
    assert "Conclusão (para despacho)" in text
    assert "enviado ao juiz" in text
    assert fake_datajud.requests[requests_before]["path"] == "/api_publica_trf1/_search"

    # 3. Invalid number: explained, and DataJud not called.
    requests_before = len(fake_datajud.requests)
    replies = await citizen.say("e esse 0000832-36.2018.4.01.3202?", contains("não é válido"))
    assert "dígitos verificadores" in joined(replies)
    assert len(fake_datajud.requests) == requests_before

    # 4. Knowledge question: answered from the documentation, with its source.
    replies = await citizen.say(
        "como tiro certidao negativa criminal", contains("Fonte:", "Isso respondeu")
    )
    answer = next(reply for reply in replies if "Fonte:" in reply["text"])
    assert "Certidões" in answer["text"]
    assert "knowledge/certidoes.md" in answer["text"]
    assert (answer.get("payload") or {}).get("sources", [{}])[0].get("path") == (
        "knowledge/certidoes.md"
    )

    # 5. Escalation: the bot hands over and the app puts the conversation in the level-2 queue.
    replies = await citizen.say(
        "quero falar com um atendente", contains("Vou transferir", "posição")
    )
    assert citizen.protocol in joined(replies)
    history = await citizen.http.get(
        f"/api/v1/conversations/{citizen.id}/messages",
        headers={"Authorization": f"Bearer {citizen.token}"},
    )
    assert history.json()["status"] == "queued"
