"""Serves the console page and the sign-in settings it reads (issuer, client, endpoints)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from assistente_app.api.deps import ResourcesDep
from assistente_app.auth.oidc import OidcDiscovery
from assistente_app.core.errors import ServiceUnavailableError

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/atendimento"

router = APIRouter(prefix=PREFIX, tags=["console"])

_discoveries: dict[str, OidcDiscovery] = {}


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@router.get("", include_in_schema=False)
async def console_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get("/", response_class=FileResponse)
async def console_page(resources: ResourcesDep) -> FileResponse:
    """The clerks' console (pt-BR, WCAG 2.1 AA)."""
    issuer = resources.settings.oidc_issuer
    # The page talks to this API and, for tokens, to the issuer; nothing else.
    connect = "'self' ws: wss:" + (f" {_origin(issuer)}" if issuer else "")
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": (
                f"default-src 'self'; connect-src {connect}; frame-ancestors 'none'; "
                "form-action 'self'; base-uri 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.get("/config.json")
async def console_config(resources: ResourcesDep) -> dict[str, Any]:
    """What the console needs to sign a clerk in: the issuer's endpoints and the public client."""
    settings = resources.settings
    if not settings.oidc_issuer:
        raise ServiceUnavailableError(
            "O login dos atendentes não está configurado (ASSISTENTE_OIDC_ISSUER)."
        )
    discovery = _discoveries.setdefault(settings.oidc_issuer, OidcDiscovery(settings.oidc_issuer))
    document = await discovery.document(resources.http)
    return {
        "issuer": document["issuer"],
        "client_id": settings.oidc_client_id,
        "authorization_endpoint": document["authorization_endpoint"],
        "token_endpoint": document["token_endpoint"],
        "end_session_endpoint": document.get("end_session_endpoint"),
    }
