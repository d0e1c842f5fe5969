"""A clerk's shift in the console, in Debian's Chromium, against the real stack: Keycloak's own
login page, the queue pushed live, taking a conversation, replying, canned answers, closing with a
resolution code, the bot taking over again, two clerks racing for one conversation, the
supervisor's view, sign-out and an ended session. axe-core audits every console screen and the
widget at each state; every step leaves a screenshot under .local/screenshots/."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.browser import Screenshots, blocking_violations, tab_until
from assistente_testbed.keycloak import KeycloakServer
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

REPLY_MS = 90_000  # a Rasa turn or a pushed update on a loaded 2-core machine
PROTOCOL = re.compile(r"^\d{8}-\d{6}-\d$")


async def assert_accessible(page: Page, screenshots: Screenshots, step: str) -> None:
    await screenshots.take(page, step)
    violations = await blocking_violations(page)
    assert not violations, f"axe-core, {step}:\n" + "\n".join(map(str, violations))


@dataclass
class Citizen:
    page: Page

    @property
    def log(self) -> Locator:
        return self.page.get_by_role("log", name="Mensagens da conversa")

    async def start(self, url: str) -> str:
        await self.page.goto(f"{url}/")
        await self.page.get_by_role("button", name="Iniciar atendimento").click()
        protocol = self.page.locator("#protocol")
        await expect(protocol).to_have_text(PROTOCOL)
        return await protocol.inner_text()

    async def say(self, text: str) -> None:
        box = self.page.get_by_label("Sua mensagem")
        await box.fill(text)
        await box.press("Enter")
        await expect(self.log.locator("li.user").filter(has_text=text).last).to_be_visible()

    async def escalate(self, protocol: str) -> None:
        await self.say("quero falar com um atendente")
        notice = self.log.locator("li.system").filter(has_text="posição")
        await expect(notice.last).to_contain_text(protocol, timeout=REPLY_MS)


@dataclass
class Clerk:
    page: Page

    async def sign_in(self, console_url: str, keycloak: KeycloakServer, username: str,
                      screenshots: Screenshots | None = None) -> None:  # fmt: skip
        clerk = keycloak.clerk(username)
        await self.page.goto(f"{console_url}/")
        button = self.page.get_by_role("button", name="Entrar com a conta do tribunal")
        await expect(button).to_be_visible()
        if screenshots is not None:
            await assert_accessible(self.page, screenshots, f"console antes do login {username}")
        await button.click()
        # Keycloak's own login page, in pt-BR.
        await self.page.wait_for_url(re.compile(re.escape(keycloak.issuer)))
        await self.page.locator("#username").fill(clerk.username)
        await self.page.locator("#password").fill(clerk.password)
        if screenshots is not None:
            await screenshots.take(self.page, f"login do keycloak {username}")
        await self.page.locator("#kc-login").click()
        await self.page.wait_for_url(f"{console_url}/")
        await expect(self.page.locator("#who")).to_contain_text(clerk.name)
        await expect(self.page.locator("#connection")).to_contain_text("Conectado")

    def queue_row(self, protocol: str) -> Locator:
        return self.page.locator(f'tr[data-protocol="{protocol}"]')


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        await context.close()


async def new_page(browser: Browser, contexts: list[BrowserContext]) -> Page:
    context = await browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 900})
    contexts.append(context)
    return await context.new_page()


async def test_a_clerk_works_a_conversation_from_sign_in_to_sign_out(
    assistant: AppProcesses,
    keycloak_server: KeycloakServer,
    console_url: str,
    browser: Browser,
    contexts: list[BrowserContext],
    screenshots: Screenshots,
) -> None:
    clerk = Clerk(await new_page(browser, contexts))
    await clerk.sign_in(console_url, keycloak_server, "atendente.demo", screenshots)
    await clerk.page.evaluate("() => { window.notReloaded = true; }")
    await assert_accessible(clerk.page, screenshots, "console conectado")

    # A citizen asks for a person in the widget.
    citizen = Citizen(await new_page(browser, contexts))
    protocol = await citizen.start(assistant.url)
    await citizen.escalate(protocol)
    await assert_accessible(citizen.page, screenshots, "cidadao na fila")

    # It appears on the clerk's screen without a reload, with the bot's summary.
    row = clerk.queue_row(protocol)
    await expect(row).to_be_visible(timeout=REPLY_MS)
    await expect(row).to_contain_text("Site")
    await expect(row).to_contain_text("Pediu para falar com atendente")
    assert await clerk.page.evaluate("() => window.notReloaded === true")
    await assert_accessible(clerk.page, screenshots, "conversa apareceu na fila")

    # Take it with the keyboard only.
    await clerk.page.get_by_role("heading", name="Filas").focus()
    await tab_until(clerk.page, rf"^button: Assumir a conversa {re.escape(protocol)}$")
    await clerk.page.keyboard.press("Enter")
    await expect(clerk.page.get_by_role("heading", name=f"Conversa {protocol}")).to_be_visible()
    reply_box = clerk.page.get_by_label("Resposta ao cidadão")
    await expect(reply_box).to_be_focused()
    history = clerk.page.locator("#history")
    await expect(history).to_contain_text("quero falar com um atendente")
    await assert_accessible(clerk.page, screenshots, "conversa assumida")

    # The citizen is told a person joined, then reads the clerk's answer.
    await expect(citizen.log.locator("li.system").last).to_contain_text(
        "Atendente entrou na conversa: Marina Lopes", timeout=REPLY_MS
    )
    await reply_box.fill("Olá! Sou a Marina. Em que posso ajudar?")
    await reply_box.press("Enter")
    await expect(citizen.log.locator("li.agent").last).to_contain_text(
        "Sou a Marina", timeout=REPLY_MS
    )
    await expect(citizen.log.locator("li.agent").last).to_contain_text("Atendente (Marina Lopes)")
    await assert_accessible(citizen.page, screenshots, "cidadao recebe a resposta")

    # The citizen answers; the bot stays silent and the clerk sees it live.
    bots_at_handover = await citizen.log.locator("li.bot").count()
    await citizen.say("Preciso de uma certidão, obrigado")
    await expect(history.locator("li.user").last).to_contain_text(
        "Preciso de uma certidão", timeout=REPLY_MS
    )
    await clerk.page.get_by_label("Resposta pronta").select_option(label="Verificando")
    await clerk.page.get_by_role("button", name="Enviar resposta pronta").click()
    await expect(citizen.log.locator("li.agent").last).to_contain_text(
        "Estou verificando", timeout=REPLY_MS
    )
    assert await citizen.log.locator("li.bot").count() == bots_at_handover  # the bot is silent
    await assert_accessible(clerk.page, screenshots, "atendimento em andamento")

    # Close with a resolution code: the citizen is told, the bot takes over again.
    await clerk.page.get_by_label("Código de encerramento").select_option(label="Dúvida resolvida")
    await clerk.page.get_by_role("button", name="Encerrar atendimento").click()
    await expect(clerk.page.locator("#conversation")).to_be_hidden()
    await expect(clerk.page.get_by_role("heading", name="Filas")).to_be_focused()
    await expect(citizen.log.locator("li.system").last).to_contain_text(
        f"Atendimento encerrado. Protocolo {protocol}", timeout=REPLY_MS
    )
    await assert_accessible(clerk.page, screenshots, "atendimento encerrado")
    bot_before = await citizen.log.locator("li.bot").count()
    await citizen.say("oi")
    await expect(citizen.log.locator("li.bot")).to_have_count(bot_before + 1, timeout=REPLY_MS)
    await expect(citizen.log.locator("li.bot").last).to_contain_text("Assistente Digital")
    await assert_accessible(citizen.page, screenshots, "bot volta a responder")

    # Sign out through Keycloak and come back to the console's sign-in screen.
    await clerk.page.get_by_role("button", name="Sair", exact=True).click()
    await expect(clerk.page.locator("#signin-message")).to_have_text(
        "Você saiu do console.", timeout=REPLY_MS
    )
    await assert_accessible(clerk.page, screenshots, "saiu do console")


async def test_two_clerks_race_for_one_conversation_and_the_supervisor_watches(
    assistant: AppProcesses,
    keycloak_server: KeycloakServer,
    console_url: str,
    browser: Browser,
    contexts: list[BrowserContext],
    screenshots: Screenshots,
) -> None:
    first = Clerk(await new_page(browser, contexts))
    second = Clerk(await new_page(browser, contexts))
    supervisor = Clerk(await new_page(browser, contexts))
    await first.sign_in(console_url, keycloak_server, "atendente.demo")
    await second.sign_in(console_url, keycloak_server, "carla.processual")
    await supervisor.sign_in(console_url, keycloak_server, "sofia.supervisora")

    citizen = Citizen(await new_page(browser, contexts))
    protocol = await citizen.start(assistant.url)
    await citizen.escalate(protocol)

    supervision = supervisor.page.get_by_role("table", name="Filas por equipe (atualizado ao vivo)")
    general = supervision.get_by_role("row", name=re.compile("Atendimento Geral"))
    await expect(general.locator("td").nth(0)).not_to_have_text("0", timeout=REPLY_MS)
    online = supervisor.page.locator("#clerks-online")
    for name in ("Marina Lopes", "Carla Mendes", "Sofia Rocha"):
        await expect(online).to_contain_text(name)
    await assert_accessible(supervisor.page, screenshots, "supervisao")
    contrast = supervisor.page.get_by_role("button", name="Alto contraste")
    await contrast.click()
    await expect(contrast).to_have_attribute("aria-pressed", "true")
    await assert_accessible(supervisor.page, screenshots, "supervisao em alto contraste")

    buttons = []
    for clerk in (first, second):
        row = clerk.queue_row(protocol)
        await expect(row).to_be_visible(timeout=REPLY_MS)
        buttons.append(row.get_by_role("button", name=f"Assumir a conversa {protocol}"))
    await screenshots.take(first.page, "antes da disputa")
    await asyncio.gather(*(button.click() for button in buttons))
    for clerk in (first, second):  # each has its answer: the conversation, or a refusal
        await clerk.page.wait_for_function(
            "() => !document.getElementById('actions').hidden"
            " || document.getElementById('alert').textContent.length > 0",
            timeout=REPLY_MS,
        )

    won = [c for c in (first, second)
           if await c.page.get_by_label("Resposta ao cidadão").is_visible()]  # fmt: skip
    assert len(won) == 1, "exactly one clerk takes the conversation"
    loser = second if won[0] is first else first
    await expect(loser.page.get_by_role("alert")).to_have_text(
        f"Outro(a) atendente já assumiu a conversa {protocol}."
    )
    await assert_accessible(loser.page, screenshots, "perdeu a disputa")
    await assert_accessible(won[0].page, screenshots, "ganhou a disputa")
    joined = citizen.log.locator("li.system").filter(has_text="Atendente entrou")
    await expect(joined).to_have_count(1, timeout=REPLY_MS)
    await expect(general.locator("td").nth(2)).not_to_have_text("0", timeout=REPLY_MS)
    await screenshots.take(supervisor.page, "supervisao depois da disputa")

    # The winner transfers it; the citizen keeps the protocol and hears of the new queue.
    await (
        won[0]
        .page.get_by_label("Transferir para a equipe")
        .select_option(label="Orientação Processual")
    )
    await won[0].page.get_by_role("button", name="Transferir").click()
    await expect(citizen.log.locator("li.system").last).to_contain_text(
        "Sua conversa foi transferida", timeout=REPLY_MS
    )
    await expect(second.queue_row(protocol)).to_be_visible(timeout=REPLY_MS)
    await expect(second.queue_row(protocol)).to_contain_text("Site")


async def test_an_ended_session_asks_the_clerk_to_sign_in_again(
    assistant: AppProcesses,
    keycloak_server: KeycloakServer,
    console_url: str,
    browser: Browser,
    contexts: list[BrowserContext],
    screenshots: Screenshots,
) -> None:
    # Short-lived tokens for this test, so the console refreshes within seconds.
    realm = keycloak_server.admin_request("GET", "")
    keycloak_server.admin_request("PUT", "", {"accessTokenLifespan": 40})
    try:
        clerk = Clerk(await new_page(browser, contexts))
        await clerk.sign_in(console_url, keycloak_server, "bruno.portal")
        keycloak_server.end_sessions("bruno.portal")  # an administrator, or the idle timeout
        message = clerk.page.locator("#signin-message")
        await expect(message).to_have_text(
            "Sua sessão expirou. Entre novamente para continuar o atendimento.", timeout=REPLY_MS
        )
        await expect(clerk.page.locator("#workspace")).to_be_hidden()
        await assert_accessible(clerk.page, screenshots, "sessao expirada")
        # Signing in again needs the password again: the session really ended.
        await clerk.page.get_by_role("button", name="Entrar com a conta do tribunal").click()
        await expect(clerk.page.locator("#password")).to_be_visible()
        await screenshots.take(clerk.page, "login de novo")
    finally:
        keycloak_server.admin_request(
            "PUT", "", {"accessTokenLifespan": realm["accessTokenLifespan"]}
        )
