"""The app's processes — `assistente-api` and `assistente-worker`, as their console scripts run
them in production — against a given PostgreSQL, Redis and Rasa, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Self

from assistente_testbed.httpjson import http_ok
from assistente_testbed.process import ManagedProcess, ServiceError, free_port, wait_until


def venv_bin(name: str) -> str:
    """A console script of the project's virtualenv (the one running this code)."""
    return str(Path(sys.executable).parent / name)


class AppStack:
    """API + worker on free ports, logging to `log_dir/api.log` and `log_dir/worker.log`.

    The human service hours are open around the clock, so escalations always reach a queue, and
    each stack gets its own queue prefix, so stacks sharing a Redis never see each other."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        rasa_url: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.api_port = free_port()
        self.worker_metrics_port = free_port()
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "ASSISTENTE_DATABASE_URL": database_url,
            "ASSISTENTE_REDIS_URL": redis_url,
            "ASSISTENTE_RASA_URL": rasa_url,
            "ASSISTENTE_QUEUE_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            "ASSISTENTE_QUEUE_BLOCK_MS": "200",
            "ASSISTENTE_WORKER_METRICS_PORT": str(self.worker_metrics_port),
            "ASSISTENTE_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "ASSISTENTE_SERVICE_DAYS": "mon,tue,wed,thu,fri,sat,sun",
            "ASSISTENTE_SERVICE_OPEN": "00:00",
            "ASSISTENTE_SERVICE_CLOSE": "23:59:59",
            **(extra_env or {}),
        }
        self.api = ManagedProcess(
            "api",
            [venv_bin("assistente-api"), "serve", "--port", str(self.api_port)],
            log_path=log_dir / "api.log",
            env=self.env,
        )
        self.worker = ManagedProcess(
            "worker",
            [venv_bin("assistente-worker"), "run"],
            log_path=log_dir / "worker.log",
            env=self.env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def worker_metrics_address(self) -> str:
        return f"127.0.0.1:{self.worker_metrics_port}"

    def start(self, timeout: float = 60.0) -> Self:
        migrate = subprocess.run(
            [venv_bin("assistente-api"), "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if migrate.returncode != 0:
            raise ServiceError(f"migrations failed:\n{migrate.stderr[-3000:]}")
        self.api.start()
        self.worker.start()

        def ready() -> bool:
            self.api.check_alive()
            self.worker.check_alive()
            return http_ok(f"{self.url}/readyz")

        wait_until(ready, timeout=timeout, what="the API", log_path=self.api.log_path)
        return self

    def stop(self) -> None:
        self.worker.stop()
        self.api.stop()
