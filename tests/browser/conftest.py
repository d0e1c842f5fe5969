"""The whole assistant for browser tests, as real processes on 127.0.0.1: PostgreSQL, Redis, Rasa
(server + action server), Keycloak, the worker and the API serving the widget at `/` and the
clerk console at `console_url`."""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.keycloak import KeycloakServer
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import free_port
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer


@pytest.fixture(scope="session")
def assistant(
    console_url: str,
    keycloak_launched: KeycloakServer,  # first: its JVM starts while Rasa loads
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    rasa_stack: RasaStack,
    keycloak_server: KeycloakServer,
) -> Iterator[AppProcesses]:
    port = urllib.parse.urlsplit(console_url).port
    assert port is not None
    env = {
        **os.environ,
        "ASSISTENTE_DATABASE_URL": postgres_server.create_database("assistente_browser"),
        "ASSISTENTE_REDIS_URL": redis_server.url,
        "ASSISTENTE_RASA_URL": rasa_stack.url,
        "ASSISTENTE_QUEUE_PREFIX": f"browser{uuid.uuid4().hex[:8]}",
        "ASSISTENTE_QUEUE_BLOCK_MS": "200",
        "ASSISTENTE_WORKER_METRICS_PORT": str(free_port()),
        "ASSISTENTE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # Human service open around the clock, so escalations reach a queue at any hour.
        "ASSISTENTE_SERVICE_DAYS": "mon,tue,wed,thu,fri,sat,sun",
        "ASSISTENTE_SERVICE_OPEN": "00:00",
        "ASSISTENTE_SERVICE_CLOSE": "23:59:59.999999",
        **keycloak_server.api_env(),
    }
    app = AppProcesses(port=port, env=env, log_dir=state_dir() / "browser")
    try:
        app.start()
        yield app
    finally:
        app.stop()
