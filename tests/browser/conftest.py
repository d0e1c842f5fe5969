"""The whole assistant for browser tests, as real processes on 127.0.0.1: PostgreSQL, Redis, Rasa
(server + action server), Keycloak, the worker and the API serving the widget at `/` and the
clerk console at `console_url`."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from assistente_testbed.app_processes import AppProcesses, local_env
from assistente_testbed.keycloak import KeycloakServer
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer
from playwright.async_api import expect

# What a person would wait for a screen to settle after a click: each step waits on a server
# round trip (sign-in, a pushed board, a claim) while this 2-core machine also runs Keycloak
# and Rasa. Playwright's 5 s default is for a page that only draws.
EXPECT_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session", autouse=True)
def patient_expectations() -> None:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


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
    env = local_env(
        database_url=postgres_server.create_database("assistente_browser"),
        redis_url=redis_server.url,
        rasa_url=rasa_stack.url,
        port=port,
        **keycloak_server.api_env(),
    )
    app = AppProcesses(port=port, env=env, log_dir=state_dir() / "browser")
    try:
        app.start()
        yield app
    finally:
        app.stop()
