"""Client of Rasa's REST channel and the interpretation of its answers (app ⇄ Rasa contract)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from assistente_app.core import metrics
from assistente_app.queue.consumer import TransientError

# Rasa overloaded or restarting (or a proxy in front of it saying so): retry without counting.
TRANSIENT_STATUSES = {408, 425, 429, 502, 503, 504}


class RasaClient:
    def __init__(self, *, base_url: str, http: httpx.AsyncClient, timeout_s: float) -> None:
        self.url = base_url.rstrip("/") + "/webhooks/rest/webhook"
        self.http = http
        self.timeout_s = timeout_s

    async def send(
        self, *, sender: str, message: str, metadata: dict[str, str]
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            response = await self.http.post(
                self.url,
                json={"sender": sender, "message": message, "metadata": metadata},
                timeout=self.timeout_s,
            )
        except httpx.TransportError as exc:
            # Connection refused, DNS, timeout: Rasa is down or restarting, not a bad message.
            raise TransientError(f"Rasa unreachable: {type(exc).__name__}") from exc
        finally:
            metrics.RASA_LATENCY.observe(time.perf_counter() - started)
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientError(f"Rasa answered {response.status_code}")
        response.raise_for_status()  # a 500 on this input counts towards dead-lettering
        body = response.json()
        if not isinstance(body, list):
            raise ValueError(f"Rasa answered {type(body).__name__}, expected a list")
        return [item for item in body if isinstance(item, dict)]


@dataclass
class BotTurn:
    """What one Rasa answer asks us to do."""

    messages: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    escalation_team: str | None = None
    escalation_reason: str = ""


def interpret(items: list[dict[str, Any]]) -> BotTurn:
    turn = BotTurn()
    for item in items:
        text = str(item.get("text") or "")
        custom = item.get("custom")
        if isinstance(custom, dict) and custom.get("type") == "escalation":
            turn.escalation_team = str(custom.get("team") or "geral")
            turn.escalation_reason = str(custom.get("reason") or "")
            if text:
                turn.messages.append((text, None))
            continue
        if (
            isinstance(custom, dict)
            and custom.get("type") == "sources"
            and not text
            and turn.messages
        ):
            # Sources belong to the knowledge answer just before them.
            previous_text, previous_payload = turn.messages[-1]
            turn.messages[-1] = (
                previous_text,
                {**(previous_payload or {}), "sources": custom.get("sources", [])},
            )
            continue
        payload: dict[str, Any] = {}
        if isinstance(custom, dict):
            payload["custom"] = custom
            if custom.get("type") == "sources":
                payload["sources"] = custom.get("sources", [])
        if item.get("buttons"):
            payload["buttons"] = item["buttons"]
        if item.get("image"):
            payload["image"] = item["image"]
        if text or payload:
            turn.messages.append((text, payload or None))
    return turn
