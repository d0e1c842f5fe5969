"""Everything one citizen's turn touches, started on free ports on 127.0.0.1.

PostgreSQL (the app's database and Rasa's tracker store), Redis (the app's streams and pub/sub,
Rasa's lock store), the DataJud fake in a process of its own, Rasa with its action server, the
API and the worker. The benchmarks use it as it is; `postgres_options` and `app_env` let a
profile turn on statement logging or try a setting.

With `ha=True` the stores are the highly available ones the chaos tests break:
- Redis: a primary, two replicas and three Sentinels; the API, the worker and Rasa's lock store
  find the primary through the Sentinels, and the API waits for one replica to hold each queued
  entry before it answers 202 (`REDIS_MIN_REPLICAS_ACK=1`);
- PostgreSQL: a primary with a streaming replica, replicated synchronously (a commit returns
  once the replica has it, as CloudNativePG does with `minSyncReplicas: 1`), so a crashed primary
  loses no acknowledged write; writers use a multi-host DSN that finds the promoted replica,
  history reads prefer the replica.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.fake_datajud import API_KEY as DATAJUD_KEY
from assistente_testbed.paths import state_dir
from assistente_testbed.postgres import PostgresServer, multi_host_dsn
from assistente_testbed.process import (
    Lifecycle,
    ManagedProcess,
    free_port,
    port_open,
    wait_until,
)
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer
from assistente_testbed.redis_ha import RedisSentinelSet

# The level-2 queue open around the clock, no per-client limits (a load generator on 127.0.0.1
# opens hundreds of conversations from one address), no worker metrics port to collide on.
LOAD_TEST_ENV = {
    "ASSISTENTE_SERVICE_DAYS": "mon,tue,wed,thu,fri,sat,sun",
    "ASSISTENTE_SERVICE_OPEN": "00:00",
    "ASSISTENTE_SERVICE_CLOSE": "23:59:59",
    "ASSISTENTE_RATE_LIMIT_PER_MINUTE": "1000000",
    "ASSISTENTE_CONVERSATION_CREATE_PER_MINUTE": "1000000",
    "ASSISTENTE_LOG_LEVEL": "WARNING",
    "ASSISTENTE_WORKER_METRICS_PORT": "0",
}

# The safety nets of a failover, tightened so a test sees them act within its run: entries
# lost with a Redis primary are queued again from PostgreSQL after this many seconds, entries
# of a killed worker are reclaimed after this idle time.
HA_APP_ENV = {
    "ASSISTENTE_REDIS_MIN_REPLICAS_ACK": "1",
    "ASSISTENTE_QUEUE_SWEEP_AFTER_S": "15",
    "ASSISTENTE_QUEUE_RECLAIM_IDLE_MS": "10000",
    "ASSISTENTE_QUEUE_BLOCK_MS": "1000",
    "ASSISTENTE_WORKER_BACKOFF_MAX_S": "2",
}


class AssistantStack(Lifecycle):
    def __init__(
        self,
        *,
        fast_postgres: bool = False,
        postgres_options: Mapping[str, str] | None = None,
        app_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        code: Path | None = None,
        ha: bool = False,
    ) -> None:
        """`code`: run the app and Rasa of another checkout with its own .venv (a baseline),
        with this checkout's stores, fakes and load generator."""
        self.code = code
        self.ha = ha
        self.log_dir = log_dir or state_dir() / "assistant-stack"
        options = dict(postgres_options or {})
        if ha:
            options["synchronous_standby_names"] = "*"
        self.postgres = PostgresServer(fast=fast_postgres and not ha, options=options)
        self.replica = PostgresServer(replica_of=self.postgres) if ha else None
        self.redis_set = RedisSentinelSet() if ha else None
        self.redis = self.redis_set.servers[0] if self.redis_set else RedisServer()
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

    def _dsn(self, database: str) -> str:
        """The primary's DSN; with HA, one that finds whichever server is writable."""
        self.postgres.ensure_database(database)
        if self.replica is None:
            return self.postgres.dsn_for(database)
        return multi_host_dsn([self.postgres, self.replica], database)

    def start(self) -> AssistantStack:
        stack = self._stack
        stack.enter_context(self.postgres)
        if self.replica is not None:
            stack.enter_context(self.replica)
        stack.enter_context(self.redis_set or self.redis)
        self.datajud.start()
        stack.callback(self.datajud.stop)
        wait_until(lambda: port_open(self.datajud_port), timeout=30, what="the DataJud fake")
        rasa_env: dict[str, str] = {}
        app_env = {**LOAD_TEST_ENV, "ASSISTENTE_REDIS_URL": self.redis.url}
        if self.redis_set is not None:
            rasa_env |= {
                "RASA_LOCK_REDIS_SENTINELS": self.redis_set.sentinel_addresses,
                "RASA_LOCK_REDIS_SENTINEL_MASTER": self.redis_set.master_name,
            }
            app_env |= {
                **HA_APP_ENV,
                "ASSISTENTE_REDIS_SENTINELS": self.redis_set.sentinel_addresses,
                "ASSISTENTE_REDIS_SENTINEL_MASTER": self.redis_set.master_name,
            }
        if self.replica is not None:
            self.postgres.ensure_database("assistente")
            app_env["ASSISTENTE_DATABASE_READ_URL"] = multi_host_dsn(
                [self.replica, self.postgres], "assistente",
                target_session_attrs="prefer-standby",
            )  # fmt: skip
        self.rasa = RasaStack(
            tracker_db_url=self._dsn("rasa_tracker"),
            lock_redis_url=self.redis.url_for_db(1),
            datajud_base_url=f"http://127.0.0.1:{self.datajud_port}",
            datajud_api_key=DATAJUD_KEY,
            log_dir=self.log_dir,
            repo=self.code,
            extra_env=rasa_env,
        )
        stack.enter_context(self.rasa)
        self.app = AppProcesses(
            {
                **app_env,
                "ASSISTENTE_DATABASE_URL": self._dsn("assistente"),
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
