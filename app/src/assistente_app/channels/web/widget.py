"""The accessible chat widget (static HTML/CSS/JS, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from assistente_app.channels.base import ensure_enabled
from assistente_app.channels.web import NAME

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = APIRouter(tags=["web"])


@router.get("/", response_class=FileResponse, include_in_schema=True)
async def widget_page(request: Request) -> FileResponse:
    """The citizen's chat page (pt-BR, WCAG 2.1 AA / eMAG)."""
    ensure_enabled(request, NAME)
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={
            # Only our own script, styles and API: no inline code, no third-party origins.
            "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
