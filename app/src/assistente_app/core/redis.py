"""Redis client construction: a plain URL or Sentinel discovery of the current primary."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from assistente_app.core.settings import CoreSettings


def create_redis(settings: CoreSettings) -> Redis:
    """Return a client with ``decode_responses`` so stream fields come back as ``str``."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    auth: dict[str, Any] = {"password": password} if password else {}
    if settings.redis_sentinels:
        hosts = []
        for item in settings.redis_sentinels.split(","):
            host, _, port = item.strip().rpartition(":")
            hosts.append((host, int(port)))
        # The timeouts are for asking the Sentinels: a dead one must not hold a discovery up.
        # (Keyword arguments of Sentinel() itself would also reach the primary's connections.)
        # The Sentinels share Redis's password.
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            hosts,
            sentinel_kwargs={"socket_timeout": 2.0, "socket_connect_timeout": 2.0, **auth},
        )
        # master_for re-discovers the primary after a failover, so reads, writes and the
        # pub/sub subscription follow it. Commands may block (XREADGROUP BLOCK): the socket
        # timeout must outlast the longest block, or an idle queue reads as a dead server.
        client: Redis = sentinel.master_for(
            settings.redis_sentinel_master,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=settings.queue_block_ms / 1000 + 5,
            health_check_interval=30,
            **auth,
        )
        return client
    return Redis.from_url(
        settings.redis_url, decode_responses=True, health_check_interval=30, **auth
    )
