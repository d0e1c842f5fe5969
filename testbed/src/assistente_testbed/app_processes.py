"""The app's API and worker as real processes, started from their console scripts the way
production runs them (`assistente-api migrate`, `assistente-api serve`, `assistente-worker run`).

`make up`, the browser and end-to-end tests, the benchmarks and the chaos tests share it: each
process is a `ManagedProcess` that can be SIGKILLed and started again (`.api`, `.workers`).
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


def venv_bin(name: str, bin_dir: Path | None = None) -> str:
    """A console script of `bin_dir`, by default the environment this interpreter runs in."""
    return str((bin_dir or Path(sys.executable).parent) / name)


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        result = subprocess.run(
            [venv_bin("assistente-api", self.bin_dir), "migrate"],
            env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"migrations failed:\n{result.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> AppProcesses:
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
