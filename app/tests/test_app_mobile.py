"""The court's mobile app: a channel that speaks the web contract (added with the recipe of
docs/extending.md), and the channel registry the API and the worker share."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from assistente_app.channels.registry import CHANNELS
from assistente_app.channels.web.schemas import WebContractChannel
from assistente_app.conversations import models as m
from assistente_app.settings import Settings
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY
from sqlalchemy import select

from .conftest import Harness


def api_paths(app: FastAPI) -> set[str]:
    return {route.path for route in app.routes if isinstance(route, APIRoute)}


def messages_counted(channel: str, direction: str) -> float:
    name, labels = {
        "inbound": ("assistente_messages_accepted_total", {"channel": channel}),
        "outbound": ("assistente_deliveries_total", {"channel": channel, "outcome": "sent"}),
    }[direction]
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_mobile_app_speaks_the_web_contract(harness: Harness) -> None:
    inbound_before = messages_counted("mobile", "inbound")
    outbound_before = messages_counted("mobile", "outbound")
    created = await harness.client.post("/api/v1/conversations", json={"channel": "mobile"})
    assert created.status_code == 201, created.text
    conversation: dict[str, Any] = created.json()
    assert conversation["channel"] == "mobile"
    token = conversation["token"]

    accepted = await harness.post_message(conversation["id"], token, "Qual o andamento?")
    assert accepted.status_code == 202, accepted.text
    await harness.bot_reply(accepted.json()["id"], "Me envie o número do processo.")
    # Delivery needs no provider: the reply is marked delivered and pushed to the WebSocket.
    assert await harness.deliver_outbound() == 1

    history = await harness.history(conversation["id"], token)
    assert [(x["role"], x["text"]) for x in history["messages"]] == [
        ("user", "Qual o andamento?"),
        ("bot", "Me envie o número do processo."),
    ]
    async with harness.worker.db.read_sessions() as session:
        stored = await session.get(m.Conversation, uuid.UUID(conversation["id"]))
        assert stored is not None
        assert stored.channel == "mobile"
        delivered = await session.scalar(
            select(m.Message.delivered_at).where(
                m.Message.conversation_id == stored.id, m.Message.role == "bot"
            )
        )
    assert delivered is not None
    status = await harness.client.get(
        f"/api/v1/protocols/{conversation['protocol']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status.json()["channel"] == "mobile"
    assert messages_counted("mobile", "inbound") == inbound_before + 1
    assert messages_counted("mobile", "outbound") == outbound_before + 1


async def test_registry_is_the_one_list_of_channels(harness: Harness) -> None:
    names = [channel.name for channel in CHANNELS]
    assert len(names) == len(set(names))
    assert {"web", "mobile", "whatsapp", "telegram", "voice"} <= set(names)
    assert set(get_args(WebContractChannel)) <= set(names)
    for channel in CHANNELS:
        if channel.settings is not None:
            assert issubclass(Settings, channel.settings), channel.name
    # The API mounts every adapter's routes; the worker has a sender for every adapter with one.
    mounted = api_paths(harness.app)
    for channel in CHANNELS:
        if channel.router is not None:
            alone = FastAPI()
            alone.include_router(channel.router)
            assert api_paths(alone) <= mounted, channel.name
    assert set(harness.worker.outbound) == {c.name for c in CHANNELS if c.outbound is not None}
