"""The real Rasa server and action server on 127.0.0.1, run from Rasa's own venv.

Both processes are started through hack/rasa-run.sh, the same entry point `make up` uses, so the
tests exercise the production wiring: the SQL tracker store on PostgreSQL and the lock store on
Redis (rasa/endpoints.yml), the REST channel and the HTTP API. The venv and the trained model
come from hack/rasa-setup.sh and hack/rasa-train.sh (both cached by content hash; a cold machine
spends a few minutes there, a warm one seconds).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistente_testbed.httpjson import http_ok
from assistente_testbed.paths import repo_root, state_dir
from assistente_testbed.process import (
    Lifecycle,
    ManagedProcess,
    ServiceError,
    free_port,
    wait_until,
)
from assistente_testbed.tools import run_hack_script


def ensure_rasa_model(timeout: float = 1800.0, repo: Path | None = None) -> Path:
    """Builds the Rasa venv and trains the model if their inputs changed; returns the model."""
    run_hack_script("rasa-setup.sh", timeout=timeout, repo=repo)
    return run_hack_script("rasa-train.sh", timeout=timeout, repo=repo)


class RasaStack(Lifecycle):
    """One action server plus one or more Rasa servers sharing the tracker and lock stores."""

    def __init__(
        self,
        *,
        tracker_db_url: str,
        lock_redis_url: str,
        datajud_base_url: str | None = None,
        datajud_api_key: str = "",
        log_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
        actions_port: int | None = None,
        repo: Path | None = None,
    ) -> None:
        """`port`/`actions_port`: fixed ports (`make up`: 5005/5055); free ones by default.
        `repo`: run the Rasa project of another checkout (a benchmark's baseline)."""
        self.repo = repo or repo_root()
        self.tracker_db_url = tracker_db_url
        self.lock_redis_url = lock_redis_url
        self.log_dir = log_dir or state_dir() / "rasa-stack"
        self.actions_port = actions_port or free_port()
        # The action server's /metrics (rasa_sdk_plugins): 9102 beside `make up`'s 5055.
        self.actions_metrics_port = 9102 if actions_port else free_port()
        self._first_port = port
        self._env = dict(os.environ)
        self._env.update(
            {
                "RASA_TRACKER_DB_URL": tracker_db_url,
                "RASA_LOCK_REDIS_URL": lock_redis_url,
                "RASA_ACTIONS_PORT": str(self.actions_port),
                "ACTIONS_METRICS_PORT": str(self.actions_metrics_port),
                "RASA_HOST": "127.0.0.1",
                "DATAJUD_API_KEY": datajud_api_key,
            }
        )
        if datajud_base_url is not None:
            self._env["DATAJUD_BASE_URL"] = datajud_base_url
        self._env.update(extra_env or {})
        self.model: Path | None = None
        self._actions: ManagedProcess | None = None
        self._servers: list[tuple[ManagedProcess, int]] = []

    @property
    def url(self) -> str:
        """The first Rasa server (REST channel at /webhooks/rest/webhook, API at /model/parse)."""
        return self.server_urls[0]

    @property
    def server_urls(self) -> list[str]:
        if not self._servers:
            raise ServiceError("the Rasa stack is not started")
        return [f"http://127.0.0.1:{port}" for _, port in self._servers]

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def actions_metrics_address(self) -> str:
        """host:port of the action server's Prometheus endpoint (/metrics)."""
        return f"127.0.0.1:{self.actions_metrics_port}"

    def start(self, timeout: float = 300.0) -> RasaStack:
        self.model = ensure_rasa_model(repo=self.repo)
        self._env["RASA_MODEL"] = str(self.model)
        script = str(self.repo / "hack" / "rasa-run.sh")
        actions_log = self.log_dir / f"actions-{self.actions_port}.log"
        self._actions = ManagedProcess(
            "rasa-actions", [script, "actions"], log_path=actions_log, env=self._env
        )
        self.start_actions(timeout=timeout)
        self.add_server(timeout=timeout)
        return self

    def start_actions(self, timeout: float = 300.0) -> None:
        """Start (or, after `kill_actions`, restart) the action server and wait for /health."""
        actions = self._actions
        if actions is None:
            raise ServiceError("the Rasa stack is not started")
        actions.start()

        def actions_ready() -> bool:
            actions.check_alive()
            return http_ok(f"{self.actions_url}/health")

        wait_until(actions_ready, timeout=timeout, what="the Rasa action server",
                   interval=0.5, log_path=actions.log_path)  # fmt: skip

    def kill_actions(self) -> None:
        """SIGKILL the action server (a crash); `start_actions()` brings it back."""
        if self._actions is not None:
            self._actions.kill()

    def add_server(self, timeout: float = 300.0) -> str:
        """Starts one more Rasa server (a replica) on the same stores; returns its URL."""
        port = (self._first_port if not self._servers else None) or free_port()
        env = {**self._env, "RASA_PORT": str(port)}
        log_path = self.log_dir / f"rasa-{port}.log"
        process = ManagedProcess(
            "rasa-server", [str(self.repo / "hack" / "rasa-run.sh"), "server"],
            log_path=log_path, env=env,
        )  # fmt: skip
        self._servers.append((process, port))
        self.start_server(len(self._servers) - 1, timeout=timeout)
        return f"http://127.0.0.1:{port}"

    def start_server(self, index: int = 0, timeout: float = 300.0) -> None:
        """Start (or, after `kill_server`, restart) Rasa server `index` and wait until its
        model is loaded."""
        process, port = self._servers[index]
        process.start()
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            process.check_alive()
            status = _get_json(f"{url}/status")
            return bool(status and status.get("model_id"))

        wait_until(ready, timeout=timeout, what=f"the Rasa server on port {port}", interval=0.5,
                   log_path=process.log_path)  # fmt: skip

    def kill_server(self, index: int = 0) -> None:
        """SIGKILL Rasa server `index` (a crash); `start_server(index)` brings it back."""
        self._servers[index][0].kill()

    def process_groups(self) -> dict[str, int]:
        """Process group of each running process, by role (for CPU and memory accounting)."""
        groups = {}
        if self._actions is not None and self._actions.pid is not None:
            groups["rasa-actions"] = self._actions.pid
        for index, (process, _) in enumerate(self._servers):
            if process.pid is not None:
                groups["rasa" if index == 0 else f"rasa-{index}"] = process.pid
        return groups

    def stop_server(self, url: str) -> None:
        """Stops one Rasa server (e.g. to watch the app cope with Rasa down)."""
        for process, port in list(self._servers):
            if url == f"http://127.0.0.1:{port}":
                process.stop()
                self._servers.remove((process, port))
                return
        raise ServiceError(f"no Rasa server of this stack at {url}")

    def stop(self) -> None:
        for process, _ in self._servers:
            process.stop()
        self._servers = []
        if self._actions is not None:
            self._actions.stop()
            self._actions = None

    def send(self, sender: str, message: str, metadata: dict[str, Any] | None = None,
             *, server: int = 0) -> list[dict[str, Any]]:  # fmt: skip
        """One turn through the REST channel, as the app's worker sends it."""
        body = json.dumps({"sender": sender, "message": message, "metadata": metadata or {}})
        request = urllib.request.Request(  # noqa: S310 (local URL)
            f"{self.server_urls[server]}/webhooks/rest/webhook",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            result: list[dict[str, Any]] = json.loads(response.read())
        return result

    def close(self) -> None:
        self.stop()


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
