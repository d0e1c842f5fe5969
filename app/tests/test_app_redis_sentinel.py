"""The Redis client found through Sentinel (how the operator deploys Redis): a real Sentinel
watching the test bed's Redis, and the queue's blocking read through the client it gives."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from assistente_app.core.redis import create_redis
from assistente_app.core.settings import CoreSettings
from assistente_testbed.process import ManagedProcess, free_port, port_open, wait_until
from assistente_testbed.redis import RedisServer

MASTER = "assistente-test"


@pytest.fixture(scope="module")
def sentinel(redis_server: RedisServer) -> Iterator[str]:
    """One Sentinel on 127.0.0.1 monitoring the test bed's Redis; yields `host:port`."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="assistente-sentinel-"))
    config = workdir / "sentinel.conf"
    config.write_text(
        f"bind 127.0.0.1\nport {port}\ndir {workdir}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {redis_server.port} 1\n"
    )
    process = ManagedProcess(
        "sentinel", ["redis-server", str(config), "--sentinel"], log_path=workdir / "log"
    )
    process.start()
    try:
        wait_until(lambda: port_open(port), timeout=20, what="Redis Sentinel")
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()


async def test_a_blocking_stream_read_through_sentinel_waits_its_whole_block(
    sentinel: str,
) -> None:
    """The queue blocks 2 s and more on XREADGROUP; the primary's connection must not time out
    before that (the Sentinel's own 2 s timeout once leaked into it)."""
    settings = CoreSettings(redis_sentinels=sentinel, redis_sentinel_master=MASTER)
    client = create_redis(settings)
    try:
        stream = f"sentinel-test-{free_port()}"
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
        entries = await client.xreadgroup("g", "c", {stream: ">"}, count=1, block=2500)
        assert not entries
        await client.xadd(stream, {"k": "v"})
        delivered: Any = await client.xreadgroup("g", "c", {stream: ">"}, count=1, block=100)
        assert delivered[0][1][0][1] == {"k": "v"}
    finally:
        await client.aclose()
