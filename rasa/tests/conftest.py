from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from assistente_testbed.fake_datajud import API_KEY, FakeDataJud
from rasa_sdk import Tracker


@pytest.fixture
def datajud(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDataJud]:
    fake = FakeDataJud().start()
    monkeypatch.setenv("DATAJUD_BASE_URL", fake.url)
    monkeypatch.setenv("DATAJUD_API_KEY", API_KEY)
    monkeypatch.setenv("DATAJUD_TIMEOUT_SECONDS", "2")
    try:
        yield fake
    finally:
        fake.stop()


def make_tracker(
    text: str,
    *,
    intent: str = "",
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Tracker:
    latest_message = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "metadata": metadata or {},
    }
    return Tracker(
        sender_id="conversa-teste",
        slots=slots or {},
        latest_message=latest_message,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )
