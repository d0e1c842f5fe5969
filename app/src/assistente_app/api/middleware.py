"""Pure-ASGI middleware: request ids + JSON access log + latency metrics, and a body limit."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistente_app.api.errors import response_error_code
from assistente_app.core import metrics
from assistente_app.core.errors import error_body
from assistente_app.core.logging import conversation_var, protocol_var, request_id_var

log = logging.getLogger("assistente_app.access")


class RequestContextMiddleware:
    """Request id and protocol context, the access log, request latency, and — on the routes
    that carry citizen messages (``message_routes``: route template → channel) — the count of
    refused messages by reason."""

    def __init__(self, app: ASGIApp, message_routes: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.message_routes = dict(message_routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming or uuid.uuid4().hex
        request_token = request_id_var.set(request_id)
        protocol_token = protocol_var.set(None)
        conversation_token = conversation_var.set(None)
        channel_token = metrics.message_channel.set(None)
        error_token = response_error_code.set(None)
        status = 500
        started = time.perf_counter()

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            if route_path not in ("/metrics", "/healthz", "/readyz"):
                metrics.HTTP_REQUEST_DURATION.labels(
                    method=scope["method"], route=route_path, status=str(status)
                ).observe(elapsed)
                # Path only, never the query string: it may carry tokens or challenges.
                log.info("%s %s %d %.1fms", scope["method"], route_path, status, elapsed * 1000)
            route_channel = self.message_routes.get(route_path)
            if route_channel is not None and scope["method"] == "POST" and status >= 400:
                metrics.MESSAGES_REJECTED.labels(
                    channel=metrics.message_channel.get() or route_channel,
                    reason=metrics.rejection_reason(status, response_error_code.get()),
                ).inc()
            request_id_var.reset(request_token)
            protocol_var.reset(protocol_token)
            conversation_var.reset(conversation_token)
            metrics.message_channel.reset(channel_token)
            response_error_code.reset(error_token)


class BodySizeLimitMiddleware:
    """Refuse bodies above ``max_bytes`` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        if declared is not None:
            # The server enforces Content-Length framing, so the declared size is the size.
            await self.app(scope, receive, send)
            return
        # Chunked upload: read it (at most max_bytes) before the app sees it. Raising from
        # inside receive() would be turned into a generic 400 by the body parser.
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._reject(send)
                return
            if not message.get("more_body", False):
                break

        async def _replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, _replay, send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"Corpo da requisição acima do limite de {self.max_bytes} bytes.",
            ),
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddressMiddleware:
    """The citizen's address behind the Ingress, for the per-IP limits.

    ``X-Forwarded-For`` is believed only when the peer is a trusted proxy, and then only up to
    the first hop that is not one: walking the list from the right, the first address outside
    ``trusted`` is the client (anything left of it may be forged by the client itself).
    """

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def client_for(self, peer: str, forwarded_for: str) -> str:
        if not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            headers = dict(scope.get("headers") or [])
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
            peer, port = scope["client"]
            if forwarded:
                scope = {**scope, "client": (self.client_for(peer, forwarded), port)}
        await self.app(scope, receive, send)
