"""The app's API and worker as real processes, started from their console scripts the way
production runs them (`assistente-api migrate`, `assistente-api serve`, `assistente-worker run`).

`make up`, the browser, end-to-end, log and real-scrape tests, the benchmarks and the chaos tests
share it. Tests build their environment with `local_env` (or `AppProcesses.for_tests`), which
gives each set of processes its own queue prefix and free ports. Each process is a
`ManagedProcess` that can be SIGKILLed and started again (`.api`, `.workers`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from assistente_testbed.httpjson import http_ok
from assistente_testbed.paths import state_dir
from assistente_testbed.process import (
    Lifecycle,
    ManagedProcess,
    ServiceError,
    free_port,
    wait_until,
)

# The worker's /metrics port when the environment does not choose one (the app's default).
DEFAULT_WORKER_METRICS_PORT = 9101


def venv_bin(name: str, bin_dir: Path | None = None) -> str:
    """A console script of `bin_dir`, by default the environment this interpreter runs in."""
    return str((bin_dir or Path(sys.executable).parent) / name)


def local_env(
    *, database_url: str, redis_url: str, rasa_url: str, port: int, **extra: str
) -> dict[str, str]:
    """The environment of an API + worker pair under test on 127.0.0.1:`port`: its own queue
    prefix (pairs sharing a Redis never see each other's streams), the worker's metrics on a
    free port, short blocking reads, and the human service open around the clock, so an
    escalation reaches a queue at any hour. `extra` adds or overrides settings."""
    return {
        **os.environ,
        "ASSISTENTE_DATABASE_URL": database_url,
        "ASSISTENTE_REDIS_URL": redis_url,
        "ASSISTENTE_RASA_URL": rasa_url,
        "ASSISTENTE_QUEUE_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "ASSISTENTE_QUEUE_BLOCK_MS": "200",
        "ASSISTENTE_WORKER_METRICS_PORT": str(free_port()),
        "ASSISTENTE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ASSISTENTE_SERVICE_DAYS": "mon,tue,wed,thu,fri,sat,sun",
        "ASSISTENTE_SERVICE_OPEN": "00:00",
        "ASSISTENTE_SERVICE_CLOSE": "23:59:59.999999",
        **extra,
    }


class AppProcesses(Lifecycle):
    """Migrations, then `workers` worker processes and the API on 127.0.0.1:`port` (a free one
    by default), configured by `env` (added to this process's environment)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        log_dir: Path | None = None,
        workers: int = 1,
        bin_dir: Path | None = None,
    ) -> None:
        """`bin_dir`: the console scripts of another checkout's venv (a benchmark's baseline)."""
        self.port = port or free_port()
        self.bin_dir = bin_dir
        self.log_dir = log_dir or state_dir() / "app"
        self.env = {**os.environ, **env}
        self.env.setdefault("ASSISTENTE_PUBLIC_BASE_URL", self.url)
        self.api = ManagedProcess(
            "api",
            [venv_bin("assistente-api", bin_dir), "serve", "--host", "127.0.0.1",
             "--port", str(self.port)],
            log_path=self.log_dir / "api.log",
            env=self.env,
        )  # fmt: skip
        self.workers = [
            ManagedProcess(
                "worker" if index == 0 else f"worker-{index}",
                [venv_bin("assistente-worker", bin_dir), "run"],
                log_path=self.log_dir / ("worker.log" if index == 0 else f"worker-{index}.log"),
                env=self.env,
            )
            for index in range(workers)
        ]

    @classmethod
    def for_tests(
        cls,
        *,
        database_url: str,
        redis_url: str,
        rasa_url: str,
        log_dir: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> Self:
        """A pair on free ports with `local_env`'s settings (plus `extra_env`)."""
        port = free_port()
        env = local_env(
            database_url=database_url,
            redis_url=redis_url,
            rasa_url=rasa_url,
            port=port,
            **(extra_env or {}),
        )
        return cls(env, log_dir=log_dir, port=port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def worker_metrics_address(self) -> str:
        """host:port of the first worker's /metrics."""
        port = self.env.get("ASSISTENTE_WORKER_METRICS_PORT") or DEFAULT_WORKER_METRICS_PORT
        return f"127.0.0.1:{port}"

    def migrate(self) -> None:
        result = subprocess.run(
            [venv_bin("assistente-api", self.bin_dir), "migrate"],
            env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"migrations failed:\n{result.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> Self:
        self.migrate()
        try:
            for worker in self.workers:
                worker.start()
            self.start_api(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_api(self, timeout: float = 60.0) -> None:
        """Start (or restart, after `.api.kill()`) the API and wait until /readyz answers."""
        self.api.start()

        def ready() -> bool:
            self.check_alive()
            return http_ok(f"{self.url}/readyz")

        wait_until(ready, timeout=timeout, what="the API", log_path=self.api.log_path)

    def check_alive(self) -> None:
        for process in (self.api, *self.workers):
            if process.pid is not None:
                process.check_alive()

    def process_groups(self) -> dict[str, int]:
        """Process group of each running process, by role (for CPU and memory accounting)."""
        groups = {"api": self.api.pid} if self.api.pid is not None else {}
        for worker in self.workers:
            if worker.pid is not None:
                groups[worker.name] = worker.pid
        return groups

    def stop(self) -> None:
        self.api.stop()
        for worker in self.workers:
            worker.stop()

    def close(self) -> None:
        self.stop()
