"""The citizen's chat widget in Debian's Chromium, used with the keyboard only, audited with
axe-core at every state (intro, chat, bot answer with buttons, queue notice, high contrast,
larger text), against the real API, worker and Rasa."""

from __future__ import annotations

import re

from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.browser import (
    Screenshots,
    blocking_violations,
    focused_element,
    tab_until,
)
from playwright.async_api import Browser, Page, expect

REPLY_TIMEOUT_MS = 90_000  # a Rasa turn on a loaded 2-core machine
PROTOCOL = re.compile(r"^\d{8}-\d{6}-\d$")


async def assert_accessible(page: Page, screenshots: Screenshots, step: str) -> None:
    await screenshots.take(page, step)
    violations = await blocking_violations(page)
    assert not violations, f"axe-core, {step}:\n" + "\n".join(map(str, violations))


async def test_a_citizen_uses_the_widget_with_the_keyboard_only(
    assistant: AppProcesses, browser: Browser, screenshots: Screenshots
) -> None:
    context = await browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{assistant.url}/")
    await expect(page).to_have_title(re.compile("Assistente Digital"))
    await assert_accessible(page, screenshots, "apresentacao")

    # The skip link comes first and leads to the main content.
    await page.keyboard.press("Tab")
    assert "Ir para o conteúdo principal" in await focused_element(page)
    await page.keyboard.press("Enter")
    await tab_until(page, r"^button: Iniciar atendimento$", max_presses=5)
    await page.keyboard.press("Enter")

    # The protocol is announced and takes the focus, so a screen reader reads it first.
    protocol = page.locator("#protocol")
    await expect(protocol).to_have_text(PROTOCOL)
    await expect(protocol).to_be_focused()
    await assert_accessible(page, screenshots, "atendimento iniciado")

    # Type and send with Enter; the bot's answer arrives in the live log.
    await tab_until(page, r"^textarea: Sua mensagem")
    await page.keyboard.type("oi, bom dia")
    await page.keyboard.press("Enter")
    log = page.get_by_role("log", name="Mensagens da conversa")
    await expect(log.locator("li.user")).to_contain_text("oi, bom dia")
    await expect(log.locator("li.bot").first).to_contain_text(
        "Assistente Digital", timeout=REPLY_TIMEOUT_MS
    )
    await expect(page.locator("#message-input")).to_be_focused()
    await assert_accessible(page, screenshots, "resposta do assistente")

    # Asking for a person: the queue notice with position and protocol.
    await page.keyboard.type("quero falar com um atendente")
    await page.keyboard.press("Enter")
    notice = log.locator("li.system").filter(has_text="posição")
    await expect(notice).to_contain_text(await protocol.inner_text(), timeout=REPLY_TIMEOUT_MS)
    await assert_accessible(page, screenshots, "na fila do atendimento humano")

    # Back up to the top: in the chat the skip link leads to the message box.
    await tab_until(page, r"^a: Ir para o campo de mensagem$", backwards=True)
    await page.keyboard.press("Enter")
    await expect(page.locator("#message-input")).to_be_focused()

    # High contrast and larger text, switched from the keyboard, stay accessible.
    await tab_until(page, r"^button: Alto contraste$", backwards=True)
    await page.keyboard.press("Space")
    await expect(page.locator("#contrast-toggle")).to_have_attribute("aria-pressed", "true")
    await assert_accessible(page, screenshots, "alto contraste")
    await page.keyboard.press("Tab")
    assert "A+ (aumentar o texto)" in await focused_element(page)
    size_before = await page.evaluate("() => getComputedStyle(document.body).fontSize")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Enter")
    size_after = await page.evaluate("() => getComputedStyle(document.body).fontSize")
    assert float(size_after.removesuffix("px")) > float(size_before.removesuffix("px"))
    await assert_accessible(page, screenshots, "texto maior em alto contraste")

    # A reload keeps the conversation (sessionStorage), with its whole history.
    await page.reload()
    await expect(protocol).to_have_text(PROTOCOL)
    await expect(log.locator("li.system").filter(has_text="posição")).to_have_count(1)

    # Tired of waiting: the citizen leaves the queue from the keyboard and keeps the protocol.
    await page.locator("#message-input").focus()
    await tab_until(page, r"^button: Sair da fila$")
    await page.keyboard.press("Enter")
    left = log.locator("li.system").filter(has_text="Você saiu da fila")
    await expect(left).to_contain_text(await protocol.inner_text(), timeout=REPLY_TIMEOUT_MS)
    await expect(page.get_by_role("button", name="Sair da fila")).to_be_hidden()
    await expect(page.locator("#message-input")).to_be_focused()
    await assert_accessible(page, screenshots, "saiu da fila")
    await context.close()
