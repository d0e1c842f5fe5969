"""Database engines (read-write and read-only), the declarative base, and raw asyncpg pools.

Most of the app talks to PostgreSQL through SQLAlchemy. The per-message hot paths (accepting a
citizen message, reading and storing a bot turn) use ``RawPool``: hand-written SQL over asyncpg,
one round trip per statement, no ORM, no pre-ping; profiling showed the ORM and the pre-ping to
be most of the API's and the worker's CPU per message.

A DSN may name several servers, libpq style (``postgresql://u:p@host1:5432,host2:5432/db?
target_session_attrs=read-write``): after a failover, new connections find the server that
matches (the promoted replica). ``engine_url()`` turns it into SQLAlchemy's form.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import asyncpg
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from assistente_app.core.settings import CoreSettings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def engine_url(dsn: str) -> str:
    """``postgresql+asyncpg://`` URL for SQLAlchemy; several libpq-style hosts become its
    ``?host=h:p&host=h:p`` form (SQLAlchemy cannot parse ``h1:p1,h2:p2``)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        dsn = "postgresql+asyncpg://" + dsn.split("://", 1)[1]
    parts = urlsplit(dsn)
    credentials, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return dsn
    query = "&".join([*(f"host={h}" for h in hosts.split(",")), *filter(None, [parts.query])])
    return f"{parts.scheme}://{credentials}{at}{parts.path}?{query}"


# The server is gone, restarting, shutting down, or no longer the primary: retry elsewhere or
# later; the statement itself was fine.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ReadOnlySQLTransactionError,
)


# A pooled connection (asyncpg's proxy; the same methods as asyncpg.Connection).
Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"


async def _keep_session(connection: Any) -> None:
    """No reset query on release. asyncpg's default (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    ALL) is a round trip per use; the hot paths leave no session state behind (no SET, LISTEN,
    cursor or advisory lock), and an open transaction is still rolled back by the pool."""


@dataclass
class RawPool:
    """An asyncpg pool, created on first use (no I/O at start-up), for the hot paths."""

    dsn: str
    max_size: int
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def _connect_args(self) -> dict[str, Any]:
        # SQLAlchemy's asyncpg dialect already knows how to read every DSN form we accept.
        dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
        url = make_url(engine_url(self.dsn))
        _args, options = dialect.create_connect_args(url)  # type: ignore[no-untyped-call]
        options.pop("prepared_statement_cache_size", None)
        return dict(options)

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        min_size=0,
                        max_size=self.max_size,
                        # Server restarts and failovers leave dead connections behind; asyncpg
                        # drops a connection that failed, so the next acquire makes a new one.
                        max_inactive_connection_lifetime=60,
                        reset=_keep_session,
                        **self._connect_args(),
                    )
        return self._pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        pool = await self.pool()
        async with pool.acquire() as connection:
            yield connection

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@dataclass(frozen=True)
class Database:
    """The primary engine for writes and an optional replica engine for reads, and the raw
    pools of the hot paths (``raw_writer`` always on the primary)."""

    writer: AsyncEngine
    reader: AsyncEngine
    write_sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    raw_writer: RawPool

    async def dispose(self) -> None:
        await self.raw_writer.close()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def create_database(settings: CoreSettings) -> Database:
    options = {
        "pool_size": settings.database_pool_size,
        "pool_pre_ping": settings.database_pool_pre_ping,
        # Bound parameters are message texts and addresses: errors must not carry them.
        "hide_parameters": True,
    }
    writer = create_async_engine(engine_url(settings.database_url), **options)
    reader = writer
    if settings.database_read_url:
        reader = create_async_engine(engine_url(settings.database_read_url), **options)
    return Database(
        writer=writer,
        reader=reader,
        write_sessions=async_sessionmaker(writer, expire_on_commit=False),
        read_sessions=async_sessionmaker(reader, expire_on_commit=False),
        raw_writer=RawPool(settings.database_url, max_size=settings.database_pool_size),
    )


async def session_scope(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
