"""Screens tested as people use them: Debian's Chromium driven by Playwright, axe-core audits,
keyboard-only walks and a screenshot of every step under .local/screenshots/.

Playwright (PyPI) drives the system's `chromium` through `executable_path`; it never downloads a
browser. axe-core comes from npm through hack/npm-tools.sh (pinned in tools/npm) and is injected
into the page under test.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistente_testbed.paths import state_dir
from assistente_testbed.process import ServiceError
from assistente_testbed.tools import run_hack_script

if TYPE_CHECKING:
    from playwright.async_api import Frame, Page

# The machine reaches no network but the package registries: without these, Chromium's own
# background requests (updates, sync, safe browsing, field trials) fail by the dozen. The host
# resolver rule makes every name but loopback fail inside the browser, so a page under test can
# never reach past 127.0.0.1 even by mistake (our URLs use the literal address).
CHROMIUM_ARGS = (
    "--no-sandbox",  # tests run as root in CI; the page is our own
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

# What the tests reject: axe's two worst levels (WCAG failures that block people).
BLOCKING_IMPACTS = ("serious", "critical")
# WCAG 2.1 A and AA, which eMAG follows, plus axe's best practices.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")


def chromium_executable() -> str:
    """Debian's Chromium (`make setup` installs it), or $ASSISTENTE_CHROMIUM."""
    path = os.environ.get("ASSISTENTE_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise ServiceError("chromium not found: run `make setup` (installs Debian's chromium)")
    return path


@lru_cache(maxsize=1)
def axe_source() -> str:
    """axe.min.js from the pinned npm package (installed on first use, then cached)."""
    node_modules = run_hack_script("npm-tools.sh", timeout=600)
    return (node_modules / "axe-core" / "axe.min.js").read_text()


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"[{self.impact}] {self.rule}: {self.help} — {', '.join(self.targets)}"


async def axe_audit(page: Page | Frame, *, exclude: tuple[str, ...] = ()) -> list[Violation]:
    """Every axe-core violation on the page as it is now (all impacts)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated over the DevTools protocol rather than as a <script> tag: our pages forbid
        # inline scripts (Content-Security-Policy), and the audit must not need that relaxed.
        await page.evaluate("() => {\n" + axe_source() + "\n}")
    raw: list[dict[str, Any]] = await page.evaluate(
        """async ([tags, exclude]) => {
            const context = exclude.length ? {exclude: exclude.map((s) => [s])} : document;
            const result = await window.axe.run(context, {
                runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact || "minor", help: v.help,
                targets: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        [list(AXE_TAGS), list(exclude)],
    )
    return [Violation(v["id"], v["impact"], v["help"], tuple(v["targets"])) for v in raw]


async def blocking_violations(
    page: Page | Frame, *, exclude: tuple[str, ...] = ()
) -> list[Violation]:
    """The serious and critical violations: a screen must have none."""
    return [v for v in await axe_audit(page, exclude=exclude) if v.impact in BLOCKING_IMPACTS]


async def focused_element(page: Page) -> str:
    """What has the keyboard focus, as a person would name it: role/tag and accessible text."""
    description: str = await page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || el === document.body) return "body";
            const label = el.getAttribute("aria-label")
                || (el.labels && el.labels[0] && el.labels[0].textContent)
                || el.textContent || el.getAttribute("placeholder") || el.id || "";
            const role = el.getAttribute("role") || el.tagName.toLowerCase();
            return role + ": " + label.trim().replace(/\\s+/g, " ").slice(0, 80);
        }"""
    )
    return description


async def tab_until(
    page: Page, pattern: str, *, backwards: bool = False, max_presses: int = 40
) -> list[str]:
    """Press Tab (Shift+Tab if `backwards`) until the focused element matches `pattern` (a regex
    on `focused_element`); returns the focus path. Fails if the keyboard cannot get there."""
    path: list[str] = []
    wanted = re.compile(pattern, re.IGNORECASE)
    for _ in range(max_presses):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        path.append(await focused_element(page))
        if wanted.search(path[-1]):
            return path
    raise AssertionError(f"{pattern!r} not reachable with Tab; focus went: {path}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "step"


@dataclass
class Screenshots:
    """A numbered screenshot per step: .local/screenshots/<test>/<NN>-<step>.png."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    @classmethod
    def for_test(cls, test_name: str) -> Screenshots:
        directory = state_dir() / "screenshots" / _slug(test_name)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return cls(directory)

    async def take(self, page: Page, step: str, *, full_page: bool = True) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{_slug(step)}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path
