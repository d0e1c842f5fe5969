"""Everything one citizen's turn touches, started on free ports on 127.0.0.1.

PostgreSQL (the app's database and Rasa's tracker store), Redis (the app's streams and pub/sub,
Rasa's lock store), the DataJud fake in a process of its own, Rasa with its action server, the
API and the worker. The benchmarks use it as it is; `postgres_options` and `app_env` let a
profile turn on statement logging or try a setting.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from assistente_testbed.app_stack import LOAD_TEST_ENV, AppProcesses
from assistente_testbed.fake_datajud import API_KEY as DATAJUD_KEY
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import (
    Lifecycle,
    ManagedProcess,
    free_port,
    port_open,
    wait_until,
)
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer


class AssistantStack(Lifecycle):
    def __init__(
        self,
        *,
        fast_postgres: bool = False,
        postgres_options: Mapping[str, str] | None = None,
        app_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        code: Path | None = None,
    ) -> None:
        """`code`: run the app and Rasa of another checkout with its own .venv (a baseline),
        with this checkout's stores, fakes and load generator."""
        self.code = code
        self.log_dir = log_dir or state_dir() / "assistant-stack"
        self.postgres = PostgresServer(fast=fast_postgres, options=postgres_options)
        self.redis = RedisServer()
        self.datajud_port = free_port()
        self.datajud = ManagedProcess(
            "fake-datajud",
            [sys.executable, "-m", "assistente_testbed.fake_datajud",
             "--port", str(self.datajud_port)],
            log_path=self.log_dir / "fake-datajud.log",
        )  # fmt: skip
        self.app_env = dict(app_env or {})
        self._stack = ExitStack()
        self.rasa: RasaStack | None = None
        self.app: AppProcesses | None = None

    def start(self) -> AssistantStack:
        stack = self._stack
        stack.enter_context(self.postgres)
        stack.enter_context(self.redis)
        self.datajud.start()
        stack.callback(self.datajud.stop)
        wait_until(lambda: port_open(self.datajud_port), timeout=30, what="the DataJud fake")
        self.rasa = RasaStack(
            tracker_db_url=self.postgres.create_database("rasa_tracker"),
            lock_redis_url=self.redis.url_for_db(1),
            datajud_base_url=f"http://127.0.0.1:{self.datajud_port}",
            datajud_api_key=DATAJUD_KEY,
            log_dir=self.log_dir,
            repo=self.code,
        )
        stack.enter_context(self.rasa)
        self.app = AppProcesses(
            {
                **LOAD_TEST_ENV,
                "ASSISTENTE_DATABASE_URL": self.postgres.create_database("assistente"),
                "ASSISTENTE_REDIS_URL": self.redis.url,
                "ASSISTENTE_RASA_URL": self.rasa.url,
                **self.app_env,
            },
            log_dir=self.log_dir,
            bin_dir=self.code / ".venv" / "bin" if self.code else None,
        )
        stack.enter_context(self.app)
        return self

    def process_groups(self) -> dict[str, int]:
        """Process group of every component, by name (for CPU and memory accounting)."""
        found: dict[str, int] = {}
        if self.app is not None:
            found |= self.app.process_groups()
        if self.rasa is not None:
            found |= self.rasa.process_groups()
        for name, server in (("postgres", self.postgres), ("redis", self.redis)):
            if server.pid is not None:
                found[name] = server.pid
        return found

    def stop(self) -> None:
        self._stack.close()

    def close(self) -> None:
        self.stop()
