"""The app's processes (API and worker) as their console scripts run them in production.

`AppProcesses` starts them on free ports against stores it is given (a plain or replicated
PostgreSQL, a plain Redis or Sentinels) and a Rasa URL, waits until the API is ready, and can
SIGKILL and restart any one of them: the chaos tests and the end-to-end benchmark share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from assistente_testbed.paths import state_dir
from assistente_testbed.process import (
    Lifecycle,
    ManagedProcess,
    ServiceError,
    free_port,
    http_ok,
    wait_until,
)

# The level-2 queue open around the clock, and no per-client limits: a load generator on
# 127.0.0.1 opens hundreds of conversations from one address.
LOAD_TEST_ENV = {
    "ASSISTENTE_SERVICE_DAYS": "mon,tue,wed,thu,fri,sat,sun",
    "ASSISTENTE_SERVICE_OPEN": "00:00",
    "ASSISTENTE_SERVICE_CLOSE": "23:59:59",
    "ASSISTENTE_RATE_LIMIT_PER_MINUTE": "1000000",
    "ASSISTENTE_CONVERSATION_CREATE_PER_MINUTE": "1000000",
    "ASSISTENTE_LOG_LEVEL": "WARNING",
}


def venv_bin(name: str, bin_dir: Path | None = None) -> str:
    """A console script of `bin_dir`, by default the environment this package runs in."""
    return str((bin_dir or Path(sys.executable).parent) / name)


class AppProcesses(Lifecycle):
    """One API process and `workers` worker processes sharing `env` (ASSISTENTE_* settings)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 1,
        log_dir: Path | None = None,
        port: int | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        """`bin_dir`: the console scripts of another checkout's venv (a benchmark's baseline)."""
        self.port = port or free_port()
        self.bin_dir = bin_dir
        self.log_dir = log_dir or state_dir() / "app-stack"
        self.env = {
            **os.environ,
            "ASSISTENTE_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "ASSISTENTE_WORKER_METRICS_PORT": "0",
            **env,
        }
        self.api = ManagedProcess(
            "api",
            [venv_bin("assistente-api", bin_dir), "serve", "--port", str(self.port)],
            log_path=self.log_dir / f"api-{self.port}.log",
            env=self.env,
        )
        self.workers = [
            ManagedProcess(
                f"worker-{index}",
                [venv_bin("assistente-worker", bin_dir), "run"],
                log_path=self.log_dir / f"worker-{self.port}-{index}.log",
                env=self.env,
            )
            for index in range(workers)
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        result = subprocess.run(
            [venv_bin("assistente-api", self.bin_dir), "migrate"],
            env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"migrations failed:\n{result.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> AppProcesses:
        self.migrate()
        for worker in self.workers:
            worker.start()
        self.start_api(timeout=timeout)
        return self

    def start_api(self, timeout: float = 60.0) -> None:
        """Start (or restart, after `kill`) the API and wait until /readyz answers."""
        self.api.start()

        def ready() -> bool:
            self.api.check_alive()
            return http_ok(f"{self.url}/readyz")

        wait_until(ready, timeout=timeout, what="the API", log_path=self.api.log_path)

    def process_groups(self) -> dict[str, int]:
        """Process group of each running process, by role (for CPU and memory accounting)."""
        groups = {"api": self.api.pid} if self.api.pid is not None else {}
        for index, worker in enumerate(self.workers):
            if worker.pid is not None:
                groups["worker" if index == 0 else f"worker-{index}"] = worker.pid
        return groups

    def stop(self) -> None:
        self.api.stop()
        for worker in self.workers:
            worker.stop()

    def close(self) -> None:
        self.stop()
