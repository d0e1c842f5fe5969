"""Rate limits in Redis, keyed per sender: GCRA (the generic cell rate algorithm).

A fixed one-minute window lets a sender make twice the limit across a window boundary, and makes
a test's count depend on where the minute turns. GCRA keeps one timestamp per sender, the
*theoretical arrival time* (TAT): each allowed call moves it ``window / limit`` into the future,
and a call is refused while the TAT is more than ``window`` ahead of now. So at most ``limit``
calls fit in any ``window``-long interval, a burst of ``limit`` is allowed after a quiet spell,
and the refusal says exactly when the next call will fit. Redis's clock is used (``TIME``), so
the API replicas' clocks need not agree.
"""

from __future__ import annotations

import hashlib
import math

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from assistente_app.core.errors import TooManyRequestsError

# KEYS[1] = the sender's key; ARGV = limit, window in ms. Returns 0 when allowed, else the
# milliseconds until the next call fits.
_GCRA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window then
  return math.ceil(new_tat - now - window)
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""
_GCRA_SHA = hashlib.sha1(_GCRA.encode()).hexdigest()  # noqa: S324 (Redis names scripts so)


async def enforce_rate_limit(
    *, redis: Redis, prefix: str, scope: str, sender: str, limit: int, window_s: int = 60
) -> None:
    """Raise ``TooManyRequestsError`` once ``sender`` exceeds ``limit`` calls in any
    ``window_s``-long interval."""
    key = f"{prefix}:rl:{scope}:{sender}"
    args = (key, limit, window_s * 1000)
    try:
        wait_ms = int(await redis.evalsha(_GCRA_SHA, 1, *args))
    except NoScriptError:
        wait_ms = int(await redis.eval(_GCRA, 1, *args))
    if wait_ms > 0:
        raise TooManyRequestsError(
            "Muitas requisições. Aguarde um pouco e tente novamente.",
            retry_after_s=max(1, math.ceil(wait_ms / 1000)),
        )
