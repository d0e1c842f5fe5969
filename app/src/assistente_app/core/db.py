"""Database engines (read-write and read-only) and the declarative base."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import MetaData
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


@dataclass(frozen=True)
class Database:
    """The primary engine for writes and an optional replica engine for reads."""

    writer: AsyncEngine
    reader: AsyncEngine
    write_sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
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
    writer = create_async_engine(settings.database_url, **options)
    reader = writer
    if settings.database_read_url:
        reader = create_async_engine(settings.database_read_url, **options)
    return Database(
        writer=writer,
        reader=reader,
        write_sessions=async_sessionmaker(writer, expire_on_commit=False),
        read_sessions=async_sessionmaker(reader, expire_on_commit=False),
    )


async def session_scope(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
