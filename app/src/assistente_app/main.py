"""``create_app()``: the FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from assistente_contract import TEAMS
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from assistente_app import __version__
from assistente_app.api.errors import install_error_handlers
from assistente_app.api.middleware import (
    BodySizeLimitMiddleware,
    ClientAddressMiddleware,
    RequestContextMiddleware,
)
from assistente_app.api.openapi import install_openapi
from assistente_app.channels.registry import CHANNELS, enabled_channels
from assistente_app.console import router as console
from assistente_app.core import metrics
from assistente_app.core.logging import configure_logging
from assistente_app.core.redis import create_redis
from assistente_app.escalation.catalog import RESOLUTION_CODES
from assistente_app.escalation.router import router as agent_router
from assistente_app.escalation.router import stop_live_board
from assistente_app.lgpd.router import router as lgpd_router
from assistente_app.ops.queues import router as queue_router
from assistente_app.ops.router import router as ops_router
from assistente_app.protocols.router import router as protocols_router
from assistente_app.realtime.hub import EventHub
from assistente_app.runtime import build_resources, close_resources
from assistente_app.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None, *, configure_logs: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if configure_logs:
            configure_logging(settings.log_level)
        resources = build_resources(settings)
        resources.enabled_channels = enabled_channels(settings)
        app.state.resources = resources
        try:
            try:
                await resources.queues.ensure_groups()
            except RedisError as exc:
                # Pods start in any order, and a fresh Sentinel has no primary for a while:
                # crashing here would only add a restart back-off. /readyz says Redis is not
                # there yet, and the workers create the groups when they connect.
                log.warning("Redis not answering at start-up: %s", type(exc).__name__)
            resources.hub = EventHub(create_redis(settings), settings.queue_prefix)
            await resources.hub.start()
            yield
        finally:
            await stop_live_board(app)
            await close_resources(resources)

    app = FastAPI(
        title="Assistente Digital API",
        version=__version__,
        description=(
            "API omnicanal do Assistente Digital: protocolos, fila, canais (web, WhatsApp, "
            "Telegram, voz), atendimento humano de nível 2 e LGPD."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    install_error_handlers(app)
    install_openapi(app)
    for channel in CHANNELS:
        if channel.router is not None:
            app.include_router(channel.router)
        if channel.static is not None:
            prefix, folder = channel.static
            app.mount(prefix, StaticFiles(directory=folder), name=f"{channel.name}-static")
    for router in (protocols_router, agent_router, lgpd_router, queue_router, ops_router):
        app.include_router(router)
    app.include_router(console.router)
    app.mount(
        f"{console.PREFIX}/static", StaticFiles(directory=console.STATIC_DIR), name="console-static"
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RequestContextMiddleware,
        message_routes={
            route: channel.name for channel in CHANNELS for route in channel.message_routes
        },
    )
    app.add_middleware(ClientAddressMiddleware, trusted=settings.trusted_networks)
    metrics.initialise_api(
        channels=[channel.name for channel in CHANNELS],
        teams=TEAMS,
        resolution_codes=RESOLUTION_CODES,
    )
    metrics.QUEUE_MAX_LENGTH.set(settings.queue_max_length)
    return app
