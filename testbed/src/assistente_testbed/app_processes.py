"""The app's API and worker as real processes, started from their console scripts the way
production runs them (`assistente-api migrate`, `assistente-api serve`, `assistente-worker run`)."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from assistente_testbed.process import ManagedProcess, ServiceError, wait_until


def venv_bin(name: str) -> str:
    """A console script of the environment this interpreter runs in (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL)
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


class AppProcesses:
    """Migrations, then the worker and the API on 127.0.0.1:`port`, configured by `env`."""

    def __init__(
        self, *, port: int, env: Mapping[str, str], log_dir: Path, worker: bool = True
    ) -> None:
        self.port = port
        self.env = dict(env)
        self.log_dir = log_dir
        self.with_worker = worker
        self.api: ManagedProcess | None = None
        self.worker: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        result = subprocess.run(
            [venv_bin("assistente-api"), "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"migrations failed:\n{result.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> Self:
        self.migrate()
        try:
            if self.with_worker:
                self.worker = ManagedProcess(
                    "worker",
                    [venv_bin("assistente-worker"), "run"],
                    log_path=self.log_dir / "worker.log",
                    env=self.env,
                )
                self.worker.start()
            self.api = ManagedProcess(
                "api",
                [venv_bin("assistente-api"), "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                log_path=self.log_dir / "api.log",
                env=self.env,
            )  # fmt: skip
            self.api.start()
            wait_until(self._ready, timeout=timeout, what="the API", log_path=self.api.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        self.check_alive()
        return http_ok(f"{self.url}/readyz")

    def check_alive(self) -> None:
        for process in (self.api, self.worker):
            if process is not None:
                process.check_alive()

    def stop(self) -> None:
        for process in (self.api, self.worker):
            if process is not None:
                process.stop()
        self.api = self.worker = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
