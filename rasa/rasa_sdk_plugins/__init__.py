"""rasa_sdk's plugin hook (it imports a top-level ``rasa_sdk_plugins`` package when present):
adds ``GET /metrics`` to the action server and times every action call by agent."""

from __future__ import annotations

import sys
import time
from typing import Any

import pluggy
from actions import metrics
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

hookimpl = pluggy.HookimplMarker("rasa_sdk")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(sys.modules[__name__])


def _action_name(request: Request) -> str | None:
    try:
        body: Any = request.json
    except Exception:  # a body that is not JSON: rasa_sdk answers it, we do not count it
        return None
    name = body.get("next_action") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    @app.get("/metrics")
    async def prometheus_metrics(_: Request) -> HTTPResponse:
        return response.text(metrics.render(), content_type=CONTENT_TYPE)

    async def start_timer(request: Request) -> None:
        request.ctx.started = time.perf_counter()

    async def count_action(request: Request, answer: BaseHTTPResponse) -> None:
        if request.path != "/webhook":
            return
        agent = metrics.AGENT_OF_ACTION.get(_action_name(request) or "")
        if agent is None:
            return
        elapsed = time.perf_counter() - getattr(request.ctx, "started", time.perf_counter())
        outcome = "ok" if answer.status == 200 else "error"
        metrics.AGENT_CALLS.inc(agent=agent, outcome=outcome)
        metrics.AGENT_DURATION.observe(elapsed, agent=agent)

    app.register_middleware(start_timer, "request")
    app.register_middleware(count_action, "response")
