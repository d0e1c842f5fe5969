"""A real Redis server in a private directory, listening on 127.0.0.1 only."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from assistente_testbed.httpjson import http_ok
from assistente_testbed.process import (
    LocalServer,
    ManagedProcess,
    ServiceError,
    free_port,
    wait_until,
)


def find_redis_server() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise ServiceError(
            "redis-server not found: run `make setup` (installs redis-server with apt)"
        )
    return Path(found)


def redis_cli(host: str, port: int, *args: str, password: str | None = None) -> str:
    """Run one redis-cli command against host:port; its output without the trailing newline.
    The password goes in REDISCLI_AUTH, never on the command line."""
    env = {**os.environ, "REDISCLI_AUTH": password} if password else None
    result = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
        env=env,
    )
    return result.stdout.strip()


class RedisServer(LocalServer):
    """redis-server with an append-only file, so a restart keeps what was acknowledged.

    `replica_of` starts it as a replica of another RedisServer (for replication tests);
    `password` makes it require one (and use it with its primary), as the operator's Redis does.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        appendonly: bool = True,
        replica_of: RedisServer | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-redis-")),
            owns_base_dir=base_dir is None,
        )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.password = password
        self.log_path = self.base_dir / "redis.log"

    @property
    def url(self) -> str:
        return self.url_for_db(0)

    def url_for_db(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def cli(self, *args: str) -> str:
        return redis_cli(self.host, self.port, *args, password=self.password)

    def start(self, timeout: float = 30.0) -> Self:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # The password in a private file, not on the command line.
        auth = self.base_dir / "auth.conf"
        auth.touch(mode=0o600)
        lines = [f"requirepass {self.password}", f"masterauth {self.password}", ""]
        auth.write_text("\n".join(lines) if self.password else "")
        argv = [
            str(find_redis_server()),
            str(auth),
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.base_dir),
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
        ]
        if self.replica_of is not None:
            argv += ["--replicaof", self.replica_of.host, str(self.replica_of.port)]
        self._process = ManagedProcess("redis", argv, log_path=self.log_path)
        self._process.start()
        process = self._process

        def ready() -> bool:
            process.check_alive()
            try:
                return self.cli("PING") == "PONG"
            except subprocess.CalledProcessError:
                return False

        wait_until(
            ready, timeout=timeout, what=f"Redis on port {self.port}", log_path=self.log_path
        )
        return self


class RedisExporter(LocalServer):
    """Debian's prometheus-redis-exporter in front of one Redis, as the sidecar of each Redis pod
    runs it; its /metrics are the redis_* series the alert rules read."""

    def __init__(self, redis: RedisServer, *, port: int | None = None) -> None:
        super().__init__(
            Path(tempfile.mkdtemp(prefix="assistente-redis-exporter-")), owns_base_dir=True
        )
        self.redis = redis
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.log_path = self.base_dir / "redis-exporter.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        found = shutil.which("prometheus-redis-exporter")
        if found is None:
            raise ServiceError(
                "prometheus-redis-exporter not found: run `make setup` (installs it with apt)"
            )
        argv = [
            found,
            f"-web.listen-address={self.address}",
            f"-redis.addr=redis://{self.redis.host}:{self.redis.port}",
        ]
        self._launch(
            "the Redis exporter",
            argv,
            log_path=self.log_path,
            ready=lambda: http_ok(f"http://{self.address}/metrics"),
            timeout=timeout,
        )
        return self
