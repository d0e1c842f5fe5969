"""Session fixtures for browser tests and real SSO (registered in the pytest plugin).

`browser` is one headless Debian Chromium for the session (each test opens its own contexts, so
cookies and storage never leak between tests); `screenshots` numbers a test's step pictures under
.local/screenshots/<test>/; `keycloak_server` is a real Keycloak with the project's realm, whose
console client redirects to `console_url` (the address the session's API serves the console on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from assistente_testbed.browser import CHROMIUM_ARGS, Screenshots, chromium_executable
from assistente_testbed.keycloak import KeycloakServer
from assistente_testbed.process import free_port

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture(scope="session")
def console_url() -> str:
    """Where the session's API will serve the clerk console (a free port, chosen up front
    because Keycloak's realm must know the console's address when it imports)."""
    return f"http://127.0.0.1:{free_port()}/atendimento"


@pytest.fixture(scope="session")
def keycloak_launched(console_url: str) -> Iterator[KeycloakServer]:
    """Keycloak's process, started but not yet awaited: a fixture that also needs another slow
    service (Rasa) asks for this one first, so the two start-ups overlap."""
    server = KeycloakServer(console_url=console_url)
    try:
        server.launch()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def keycloak_server(keycloak_launched: KeycloakServer) -> KeycloakServer:
    """A real Keycloak, ready, with the project's realm and freshly generated clerk passwords."""
    keycloak_launched.wait_ready()
    return keycloak_launched


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots.for_test(request.node.name)
