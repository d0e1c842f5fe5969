"""Runs in Rasa's venv: the actions build their messages the way the action server does, and
this prints them as Rasa's REST channel hands them to the worker (one JSON list per case).

Usage (from rasa/, contract/src on PYTHONPATH): python tests/rest_channel_output.py METADATA
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from actions import ActionEscalarAtendimento, ActionServicosPortal
from conftest import make_tracker
from domain_responses import render
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


def rest_channel_output(action: Action, tracker: Tracker) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, tracker, {}))
    output = []
    for message in map(render, dispatcher.messages):
        item: dict[str, Any] = {"recipient_id": tracker.sender_id}
        for key in ("text", "buttons", "image", "custom"):
            if message.get(key):
                item[key] = message[key]
        output.append(item)
    return output


def main() -> None:
    metadata = json.loads(sys.argv[1])
    escalation = make_tracker(
        "quero falar com um atendente",
        intent="falar_com_atendente",
        slots={"equipe": "servicos_portal"},
        metadata=metadata,
    )
    knowledge = make_tracker("como tiro certidao negativa criminal", metadata=metadata)
    print(
        json.dumps(
            {
                "escalation": rest_channel_output(ActionEscalarAtendimento(), escalation),
                "knowledge": rest_channel_output(ActionServicosPortal(), knowledge),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
