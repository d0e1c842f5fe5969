"""A real ``assistente-worker`` process killed (SIGKILL) in the middle of a message loses
nothing: another consumer reclaims the entry and finishes it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from typing import Any

from assistente_app.conversations import models as m
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.queue.streams import GROUP, Entry
from assistente_app.worker.handlers import store_bot_turn
from sqlalchemy import select

from .conftest import SettingsFactory, running_app, wait_for


async def test_killed_worker_loses_nothing(make_settings: SettingsFactory, oidc: Any) -> None:
    # A TCP listener that accepts and never answers: the worker hangs inside its Rasa call,
    # which is exactly "mid-message" when we kill it.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    port = black_hole.getsockname()[1]
    settings = make_settings(rasa_url=f"http://127.0.0.1:{port}", rasa_timeout_s=120)
    async with running_app(settings, oidc) as h:
        conversation_id, token, _ = await h.open_conversation()
        posted = (await h.post_message(conversation_id, token, "preciso de ajuda")).json()
        queue = h.resources.queues.inbound_for(conversation_id)
        env = {
            **os.environ,
            "ASSISTENTE_DATABASE_URL": settings.database_url,
            "ASSISTENTE_REDIS_URL": settings.redis_url,
            "ASSISTENTE_QUEUE_PREFIX": settings.queue_prefix,
            "ASSISTENTE_RASA_URL": settings.rasa_url,
            "ASSISTENTE_RASA_TIMEOUT_S": "120",
            "ASSISTENTE_WORKER_METRICS_PORT": "0",
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from assistente_app.cli import worker; worker(['run'])",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:

            async def taken_by_worker() -> bool:
                pending = await h.resources.redis.xpending_range(
                    queue.key, GROUP, min="-", max="+", count=10
                )
                return any(str(p["consumer"]).endswith(f"-{worker.pid}") for p in pending)

            # Generous: importing the worker alone takes 15 s on a loaded 2-core machine.
            await wait_for(taken_by_worker, within=120)
            worker.send_signal(signal.SIGKILL)
            await asyncio.wait_for(worker.wait(), timeout=10)
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            black_hole.close()

        async def finish(entry: Entry) -> None:
            # What the worker does after Rasa answers (Rasa itself is covered end to end
            # by the e2e suite; here only the queue semantics matter).
            await store_bot_turn(
                h.worker,
                message_id=uuid.UUID(entry.fields["message_id"]),
                items=[{"recipient_id": conversation_id, "text": "Posso ajudar, sim."}],
            )

        survivor = StreamConsumer(
            queue, finish, consumer="survivor", reclaim_idle_ms=300, block_ms=10
        )
        await wait_for(lambda: survivor.run_once(), within=10)
        assert await queue.pending_count() == 0
        assert await queue.depth() == 0
        async with h.worker.db.read_sessions() as session:
            status = await session.scalar(
                select(m.Message.status).where(m.Message.id == uuid.UUID(posted["id"]))
            )
        assert status == m.PROCESSED
        texts = [x["text"] for x in (await h.history(conversation_id, token))["messages"]]
        assert texts == ["preciso de ajuda", "Posso ajudar, sim."]
