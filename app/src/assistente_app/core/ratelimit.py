"""Fixed-window rate limits in Redis, keyed per sender."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from assistente_app.core.errors import TooManyRequestsError

# One command instead of MULTI/INCR/EXPIRE/EXEC: this runs on every accepted message.
_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


async def enforce_rate_limit(
    *, redis: Redis, prefix: str, scope: str, sender: str, limit: int, window_s: int = 60
) -> None:
    """Raise ``TooManyRequestsError`` once ``sender`` exceeds ``limit`` calls in this window."""
    window = int(time.time()) // window_s
    key = f"{prefix}:rl:{scope}:{sender}:{window}"
    count = await redis.register_script(_COUNT_IN_WINDOW)(keys=[key], args=[window_s + 1])
    if int(count) > limit:
        retry_after = window_s - int(time.time()) % window_s
        raise TooManyRequestsError(
            "Muitas requisições. Aguarde um pouco e tente novamente.",
            retry_after_s=retry_after,
        )
