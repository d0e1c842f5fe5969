"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from assistente_app.api.deps import ResourcesDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "PostgreSQL, Redis ou os eventos indisponíveis"}}
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """Readiness: PostgreSQL (primary) and Redis answer, and Redis' events reach this process."""
    checks: dict[str, Any] = {}
    try:
        async with resources.db.writer.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await resources.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    if resources.hub is not None:
        # Replies reach WebSockets and pending calls through this subscription.
        checks["events"] = "ok" if resources.hub.subscribed else "error: not subscribed"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus text format (the stream and level-2 gauges come from the worker)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
