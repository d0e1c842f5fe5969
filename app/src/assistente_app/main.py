"""``create_app()``: the FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

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
from assistente_app.core.logging import configure_logging
from assistente_app.escalation.router import router as agent_router
from assistente_app.escalation.router import stop_live_board
from assistente_app.lgpd.router import router as lgpd_router
from assistente_app.ops.queues import router as queue_router
from assistente_app.ops.router import router as ops_router
from assistente_app.protocols.router import router as protocols_router
from assistente_app.realtime.hub import EventHub
from assistente_app.runtime import build_resources, close_resources
from assistente_app.settings import Settings, get_settings


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
            await resources.queues.ensure_groups()
            resources.hub = EventHub(resources.redis, settings.queue_prefix)
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
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ClientAddressMiddleware, trusted=settings.trusted_networks)
    return app
