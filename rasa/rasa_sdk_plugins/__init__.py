"""rasa_sdk's plugin hook (it imports a top-level ``rasa_sdk_plugins`` package when present): it
writes the logs as JSON lines (``logs``), times every action call by agent, and serves the
metrics on a port of their own, ``ACTIONS_METRICS_PORT`` (the operator sets 9102; unset or
``0`` turns it off), which Prometheus may reach while the action webhook stays reachable from
the Rasa server only."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pluggy
from actions import metrics
from sanic import Sanic
from sanic.request import Request
from sanic.response import BaseHTTPResponse

from rasa_sdk_plugins import logs

hookimpl = pluggy.HookimplMarker("rasa_sdk")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(sys.modules[__name__])


def _json_body(request: Request) -> Any:
    try:
        return request.json
    except Exception:  # a body that is not JSON: rasa_sdk answers it, we do not count it
        return None


def _action_name(request: Request) -> str | None:
    body = _json_body(request)
    name = body.get("next_action") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = metrics.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds would drown the action server's log


def serve_metrics(port: int, host: str) -> ThreadingHTTPServer | None:
    """The /metrics endpoint in a daemon thread; None when ``port`` is 0."""
    if not port:
        return None
    try:
        server = ThreadingHTTPServer((host, port), _MetricsHandler)
    except OSError as error:  # the actions still work without their metrics
        logging.getLogger(__name__).error("no /metrics on %s:%s: %s", host, port, error)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


@hookimpl
def attach_sanic_app_extensions(app: Sanic) -> None:
    if os.environ.get("ACTIONS_LOG_FORMAT", "json") == "json":
        logs.configure()
    serve_metrics(
        int(os.environ.get("ACTIONS_METRICS_PORT") or 0),
        os.environ.get("SANIC_HOST", "0.0.0.0"),  # noqa: S104 (the pod's address)
    )

    async def start_timer(request: Request) -> None:
        request.ctx.started = time.perf_counter()
        if request.path == "/webhook":
            logs.bind_call(_json_body(request))

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
