"""Telling "PostgreSQL or Redis is unavailable right now" from "this request or message is bad".

An outage (a restart, a failover, a network blip, a pool exhausted) is answered with 503 and
``Retry-After`` by the API, and is retried by the worker without counting a failure against the
message, so a ten-second database failover dead-letters nothing. Anything else is a real error.
"""

from __future__ import annotations

from collections.abc import Iterator

from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

# SQLSTATEs that say "try again", whatever the statement was:
#   08xxx connection exceptions; 57P01-57P03 shutdown or starting up; 53300 too many
#   connections; 40001/40P01 serialisation failure and deadlock (the transaction may be retried);
#   25006 read-only transaction (a primary demoted, or a standby not promoted yet).
_RETRYABLE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01", "25006")

_REDIS_OUTAGES = (
    redis_errors.ConnectionError,  # also BusyLoadingError and Sentinel's MasterNotFoundError
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica answering after a failover
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says PostgreSQL or Redis is unavailable."""
    for error in _chain(exc):
        if isinstance(error, _REDIS_OUTAGES):
            return True
        if isinstance(error, sa_errors.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_errors.TimeoutError):  # the connection pool is exhausted
            return True
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_RETRYABLE_SQLSTATE_PREFIXES):
            return True
        # Refused or reset connections, and asyncpg's "connection is closed" (an InterfaceError).
        if isinstance(error, (ConnectionError, TimeoutError)):
            return True
        if type(error).__name__ in ("ConnectionDoesNotExistError", "InterfaceError") and (
            "connection" in str(error).lower()
        ):
            return True
    return False
