"""End to end with the real Rasa stack (server + action server, tracker on PostgreSQL, lock
store on Redis): API → stream → the real worker loop → Rasa → replies, sources, escalation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from assistente_app.worker.runner import run_worker
from assistente_testbed.rasa import RasaStack

from .conftest import Harness, SettingsFactory, running_app, wait_for


@pytest.fixture
async def stack_app(
    make_settings: SettingsFactory, oidc: Any, rasa_stack: RasaStack
) -> AsyncIterator[Harness]:
    settings = make_settings(rasa_url=rasa_stack.url, queue_block_ms=100)
    async with running_app(settings, oidc) as h:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, stop))
        try:
            yield h
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(worker, timeout=60)


async def turn(h: Harness, conversation_id: str, token: str, text: str) -> list[dict[str, Any]]:
    """Send ``text`` and return the messages that followed it once the bot has answered."""
    posted = await h.post_message(conversation_id, token, text)
    assert posted.status_code == 202

    async def answered() -> list[dict[str, Any]] | None:
        messages = (await h.history(conversation_id, token))["messages"]
        ids = [m["id"] for m in messages]
        after = messages[ids.index(posted.json()["id"]) + 1 :]
        return after if after else None

    await wait_for(answered, within=120)
    # Rasa answers a turn in one response and the worker stores it in one transaction.
    return await answered() or []


async def test_web_conversation_through_real_rasa(stack_app: Harness) -> None:
    h = stack_app
    conversation_id, token, protocol = await h.open_conversation()

    greeting = await turn(h, conversation_id, token, "oi")
    assert greeting[0]["role"] == "bot"
    assert greeting[0]["text"]

    answer = await turn(h, conversation_id, token, "como emito uma certidão?")
    sourced = [m for m in answer if (m["payload"] or {}).get("sources")]
    assert sourced, answer
    assert sourced[0]["payload"]["sources"][0]["path"]

    handoff = await turn(h, conversation_id, token, "quero falar com um atendente")
    notice = handoff[-1]
    assert notice["role"] == "system"
    assert notice["payload"]["type"] == "queue"  # the suite's service hours are always open
    assert protocol in notice["text"]
    status = (await h.history(conversation_id, token))["status"]
    assert status == "queued"

    # While queued, the bot stays silent: the message is kept for the agent.
    silent = await h.post_message(conversation_id, token, "alô?")
    assert silent.json()["status"] == "for_agent"
