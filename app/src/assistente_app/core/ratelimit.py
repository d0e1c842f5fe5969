"""Fixed-window rate limits in Redis, keyed per sender."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from assistente_app.core.errors import TooManyRequestsError


async def enforce_rate_limit(
    *, redis: Redis, prefix: str, scope: str, sender: str, limit: int, window_s: int = 60
) -> None:
    """Raise ``TooManyRequestsError`` once ``sender`` exceeds ``limit`` calls in this window."""
    window = int(time.time()) // window_s
    key = f"{prefix}:rl:{scope}:{sender}:{window}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count, _ = await pipe.execute()
    if int(count) > limit:
        retry_after = window_s - int(time.time()) % window_s
        raise TooManyRequestsError(
            "Muitas requisições. Aguarde um pouco e tente novamente.",
            retry_after_s=retry_after,
        )
