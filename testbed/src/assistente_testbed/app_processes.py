"""The app's API and worker as real processes, started from their console scripts the way
production runs them (`assistente-api migrate`, `assistente-api serve`, `assistente-worker run`).

One helper for `make up` (fixed port, the developer's environment) and for the tests that need
the real processes (end to end, browser, logs, real scrape): those build their environment with
`local_env`, which gives each pair its own queue prefix and free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from assistente_testbed.httpjson import http_ok
from assistente_testbed.process import ManagedProcess, ServiceError, free_port, wait_until

# The worker's /metrics port when the environment does not choose one (the app's default).
DEFAULT_WORKER_METRICS_PORT = 9101


def venv_bin(name: str) -> str:
    """A console script of the environment this interpreter runs in (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


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


class AppProcesses:
    """Migrations, then the worker and the API on 127.0.0.1:`port` (a free one when not given),
    configured by `env`, logging to `log_dir/api.log` and `log_dir/worker.log`."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        port: int | None = None,
        worker: bool = True,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.env = dict(env)
        self.log_dir = log_dir
        self.with_worker = worker
        self.api: ManagedProcess | None = None
        self.worker: ManagedProcess | None = None

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
        return cls(env=env, log_dir=log_dir, port=port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def worker_metrics_address(self) -> str:
        port = self.env.get("ASSISTENTE_WORKER_METRICS_PORT") or DEFAULT_WORKER_METRICS_PORT
        return f"127.0.0.1:{port}"

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
