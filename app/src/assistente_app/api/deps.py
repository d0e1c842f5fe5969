"""Typed FastAPI dependencies: resources, DB sessions, principals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from assistente_contract import TEAMS
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from assistente_app.api.errors import MissingBearerTokenError
from assistente_app.auth.oidc import Clerk, Principal, clerk_of, require_role
from assistente_app.core.errors import ServiceUnavailableError
from assistente_app.core.settings import CoreSettings
from assistente_app.runtime import Resources

# Dependencies are `async def` even when they await nothing: FastAPI runs a plain `def` in its
# thread pool, a thread hand-off per dependency per request (a fifth of the API's CPU per
# message in the profile of issue #12).


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings_dep(resources: ResourcesDep) -> CoreSettings:
    return resources.settings


async def get_redis(resources: ResourcesDep) -> Redis:
    return resources.redis


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with resources.db.write_sessions() as session:
        yield session


async def get_read_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with resources.db.read_sessions() as session:
        yield session


SettingsDep = Annotated[CoreSettings, Depends(get_settings_dep)]
RedisDep = Annotated[Redis, Depends(get_redis)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingBearerTokenError("Envie o token no cabeçalho Authorization: Bearer <token>.")
    return token.strip()


BearerDep = Annotated[str, Depends(bearer_token)]


async def get_principal(resources: ResourcesDep, token: BearerDep) -> Principal:
    if resources.verifier is None:
        raise ServiceUnavailableError("Autenticação de atendentes não configurada (OIDC).")
    return await resources.verifier.verify(token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_agent(principal: PrincipalDep) -> Principal:
    require_role(principal, "agent", "admin")
    return principal


async def get_admin(principal: PrincipalDep) -> Principal:
    require_role(principal, "admin")
    return principal


AgentDep = Annotated[Principal, Depends(get_agent)]
AdminDep = Annotated[Principal, Depends(get_admin)]


def clerk_from(principal: Principal, settings: CoreSettings) -> Clerk:
    return clerk_of(
        principal,
        known_teams=TEAMS,
        team_prefix=settings.oidc_team_role_prefix,
        supervisor_role=settings.oidc_supervisor_role,
    )


async def get_clerk(agent: AgentDep, resources: ResourcesDep) -> Clerk:
    """The signed-in clerk, with the teams their roles give them."""
    return clerk_from(agent, resources.settings)


ClerkDep = Annotated[Clerk, Depends(get_clerk)]
