"""Fixtures for the app suite: a migrated database, a local OIDC issuer, a running app."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from assistente_app.conversations import models as m
from assistente_app.conversations.service import add_message, enqueue_delivery
from assistente_app.core.migrate import upgrade
from assistente_app.main import create_app
from assistente_app.queue.consumer import StreamConsumer
from assistente_app.runtime import Resources
from assistente_app.settings import Settings
from assistente_app.worker.handlers import WorkerContext, handle_outbound, store_bot_turn
from assistente_app.worker.runner import build_context, close_context, run_worker
from assistente_testbed.http_fakes import send_json
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select

ISSUER = "http://127.0.0.1/realms/tribunal"
AUDIENCE = "assistente-api"


class JwksIssuer:
    """A local OIDC issuer: an RSA key and a JWKS document over real HTTP."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.requests = 0
        self.down = threading.Event()  # set: requests hang, then fail (an IdP that is down)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                if issuer.down.is_set():
                    time.sleep(6)  # longer than the verifier's fetch timeout
                    send_json(self, 503, {"error": "indisponível"})
                    return
                if self.path.endswith("/.well-known/openid-configuration"):
                    # Discovery of the issuer at this server (the console's config, the fuzz run).
                    realm = self.path.removesuffix("/.well-known/openid-configuration")
                    base = issuer.served_issuer.removesuffix("/realms/tribunal") + realm
                    send_json(
                        self,
                        200,
                        {
                            "issuer": base,
                            "jwks_uri": issuer.url,
                            "authorization_endpoint": f"{base}/protocol/openid-connect/auth",
                            "token_endpoint": f"{base}/protocol/openid-connect/token",
                        },
                    )
                    return
                jwk = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                jwk.update(kid=issuer.kid, use="sig", alg="RS256")
                send_json(self, 200, {"keys": [jwk]})

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/protocol/openid-connect/certs"
        # An issuer whose discovery document this server answers (ISSUER's host is nowhere).
        self.served_issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/tribunal"

    def token(
        self,
        sub: str = "agente-1",
        roles: tuple[str, ...] = ("agent",),
        *,
        audience: str = AUDIENCE,
        expires_in: int = 300,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        issuer: str = ISSUER,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": sub,
            "iat": now,
            "exp": now + expires_in,
            "preferred_username": sub,
            "realm_access": {"roles": list(roles)},
            **(extra or {}),
        }
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    def headers(self, sub: str = "agente-1", roles: tuple[str, ...] = ("agent",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, roles)}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def oidc() -> Iterator[JwksIssuer]:
    issuer = JwksIssuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="session")
def database_url(postgres_server: Any) -> str:
    dsn = str(postgres_server.create_database("assistente_app_tests"))
    upgrade(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    return dsn


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(database_url: str, redis_server: Any, oidc: JwksIssuer) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_server.url,
            "queue_prefix": f"t{uuid.uuid4().hex[:10]}",
            "oidc_jwks_url": oidc.url,
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "whatsapp_verify_token": "verifica-123",
            "whatsapp_app_secret": "segredo-do-app",
            "telegram_webhook_secret": "segredo-telegram",
            "voice_auth_token": "token-voz",
            "service_days": "mon,tue,wed,thu,fri,sat,sun",
            "service_open": dt.time(0, 0),
            "service_close": dt.time.max,
            "rate_limit_per_minute": 1000,
            "conversation_create_per_minute": 1000,
            "worker_metrics_port": None,
            "queue_block_ms": 50,
            "voice_reply_timeout_s": 5.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    oidc: JwksIssuer
    worker: WorkerContext
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources

    async def open_conversation(self) -> tuple[str, str, str]:
        response = await self.client.post("/api/v1/conversations", json={"channel": "web"})
        assert response.status_code == 201, response.text
        body = response.json()
        return body["id"], body["token"], body["protocol"]

    async def post_message(self, conversation_id: str, token: str, text: str) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"text": text},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def history(self, conversation_id: str, token: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def bot_reply(self, message_id: str | uuid.UUID, *texts: str) -> list[uuid.UUID]:
        """What the worker does with a Rasa answer (Rasa-shaped items), including queueing the
        replies for delivery. The real Rasa path is covered by the e2e suite."""
        ids = await store_bot_turn(
            self.worker,
            message_id=uuid.UUID(str(message_id)),
            items=[{"recipient_id": "x", "text": text} for text in texts],
        )
        message = await self._conversation_of(uuid.UUID(str(message_id)))
        await enqueue_delivery(queues=self.worker.queues, conversation_id=message, message_ids=ids)
        return ids

    async def _conversation_of(self, message_id: uuid.UUID) -> uuid.UUID:
        async with self.worker.db.read_sessions() as session:
            value = await session.scalar(
                select(m.Message.conversation_id).where(m.Message.id == message_id)
            )
        assert value is not None
        return value

    async def deliver_outbound(self) -> int:
        """Run the real outbound handler over everything queued for delivery."""
        handled = 0
        for queue in self.worker.queues.outbound:
            consumer = StreamConsumer(
                queue, lambda e: handle_outbound(self.worker, e), consumer="test-outbound"
            )
            await queue.ensure_group()
            while count := await consumer.run_once(block_ms=0):
                handled += count
        return handled

    async def store_and_lose_its_event(self, conversation_id: str, role: str, text: str) -> None:
        """A message stored while the events channel was away, as in a Redis failover: the
        row is written, no event is published, then every subscription to the channel drops
        (the hubs subscribe again and tell their sockets to catch up)."""
        async with self.resources.db.write_sessions() as session:
            await add_message(
                session=session, conversation_id=uuid.UUID(conversation_id), role=role, text_=text
            )
            await session.commit()
        await self.resources.redis.client_kill_filter(_type="pubsub")


@asynccontextmanager
async def running_app(settings: Settings, oidc: JwksIssuer) -> AsyncIterator[Harness]:
    app = create_app(settings, configure_logs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            worker = build_context(settings)
            try:
                yield Harness(app=app, client=client, settings=settings, oidc=oidc, worker=worker)
            finally:
                await close_context(worker)


@pytest.fixture
async def harness(make_settings: SettingsFactory, oidc: JwksIssuer) -> AsyncIterator[Harness]:
    async with running_app(make_settings(), oidc) as h:
        yield h


@asynccontextmanager
async def worker_running(settings: Settings) -> AsyncIterator[None]:
    """The real worker loop (consumers, sweeper, retention) in this process, stopped after."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=90)


async def wait_for(predicate: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def live(make_settings: SettingsFactory, oidc: Any) -> AsyncIterator[tuple[Harness, str]]:
    """The same settings served twice: in-process (for the worker steps) and by uvicorn (a
    second API replica, reached over real TCP), so events cross processes through Redis."""
    settings = make_settings(ws_auth_timeout_s=1.0)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, configure_logs=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_frame_bytes,  # as assistente-api serve runs it
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started)
        async with running_app(settings, oidc) as h:
            yield h, f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def next_event(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        if event["type"] == kind:
            return dict(event)
