"""Redis with automatic failover: a primary, its replicas and three Sentinels, all on 127.0.0.1.

This is the topology the deployed system runs (the operator's Redis StatefulSet with Sentinel, or a
managed Redis with a replica), made of real `redis-server` processes, so the tests can kill the
primary and watch the Sentinels promote a replica and the clients follow it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from assistente_testbed.process import (
    Lifecycle,
    LocalServer,
    ManagedProcess,
    ServiceError,
    free_port,
    wait_until,
)
from assistente_testbed.redis import RedisServer, find_redis_server, redis_cli

DEFAULT_MASTER_NAME = "assistente"


class RedisSentinel(LocalServer):
    """One `redis-server --sentinel` watching `master_name`.

    Sentinel rewrites its own configuration file (it records the replicas, the other Sentinels and
    every failover there), so the file lives in the Sentinel's private directory.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        primary: RedisServer,
        master_name: str = DEFAULT_MASTER_NAME,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000,
        password: str | None = None,
    ) -> None:
        super().__init__(base_dir, owns_base_dir=False)
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        self.master_name = master_name
        self.primary = primary
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.config_path = self.base_dir / "sentinel.conf"
        self.log_path = self.base_dir / "sentinel.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cli(self, *args: str) -> str:
        return redis_cli(self.host, self.port, *args, password=self.password)

    def master_address(self) -> tuple[str, int] | None:
        """Where this Sentinel says the primary is now."""
        try:
            lines = self.cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name).splitlines()
        except subprocess.CalledProcessError:
            return None
        if len(lines) != 2:
            return None
        return lines[0], int(lines[1])

    def _known(self, what: str) -> int:
        """How many replicas or other Sentinels this Sentinel has discovered."""
        try:
            out = self.cli("SENTINEL", what, self.master_name)
        except subprocess.CalledProcessError:
            return 0
        return sum(1 for line in out.splitlines() if line == "name")

    def start(self, timeout: float = 30.0) -> Self:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        name = self.master_name
        self.config_path.write_text(
            "\n".join(
                [
                    f"bind {self.host}",
                    f"port {self.port}",
                    f"dir {self.base_dir}",
                    "protected-mode yes",
                    f"sentinel monitor {name} {self.primary.host} {self.primary.port} "
                    f"{self.quorum}",
                    f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
                    f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {name} 1",
                    # As the operator's Sentinels: they require the password, and use it with
                    # the Redis servers and with each other.
                    *(
                        [
                            f"requirepass {self.password}",
                            f"sentinel auth-pass {name} {self.password}",
                            f"sentinel sentinel-pass {self.password}",
                        ]
                        if self.password
                        else []
                    ),
                    "",
                ]
            )
        )
        self.config_path.chmod(0o600)
        self._process = ManagedProcess(
            "redis-sentinel",
            [str(find_redis_server()), str(self.config_path), "--sentinel"],
            log_path=self.log_path,
        )
        self._process.start()
        process = self._process

        def ready() -> bool:
            process.check_alive()
            return self.master_address() is not None

        wait_until(
            ready, timeout=timeout, what=f"Sentinel on port {self.port}", log_path=self.log_path
        )
        return self


class RedisSentinelSet(Lifecycle):
    """`replicas + 1` Redis servers (one primary) and `sentinels` Sentinels with quorum 2.

    Use it as a context manager, or call `start()` and `remove()`. `sentinel_addresses` is what
    clients take (`ASSISTENTE_REDIS_SENTINELS`, Rasa's lock store); `kill_primary()` and
    `wait_for_failover()` drive a failover.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        replicas: int = 2,
        sentinels: int = 3,
        master_name: str = DEFAULT_MASTER_NAME,
        down_after_ms: int = 1000,
        password: str | None = None,
    ) -> None:
        """`password`: every server and Sentinel requires it (as the operator's do)."""
        self._owns_base_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="assistente-redis-ha-"))
        self.master_name = master_name
        first = RedisServer(self.base_dir / "redis-0", password=password)
        self.servers: list[RedisServer] = [first]
        self.servers += [
            RedisServer(self.base_dir / f"redis-{index}", replica_of=first, password=password)
            for index in range(1, replicas + 1)
        ]
        self.sentinels = [
            RedisSentinel(
                self.base_dir / f"sentinel-{index}",
                primary=first,
                master_name=master_name,
                down_after_ms=down_after_ms,
                password=password,
            )
            for index in range(sentinels)
        ]

    @property
    def sentinel_addresses(self) -> str:
        """`host:port,host:port,...`: the Sentinels, as clients are configured with them."""
        return ",".join(sentinel.address for sentinel in self.sentinels)

    def start(self, timeout: float = 60.0) -> Self:
        for server in self.servers:
            server.start()
        wait_until(
            lambda: all(self._link_up(s) for s in self.servers[1:]),
            timeout=timeout,
            what="the Redis replicas to sync with the primary",
        )
        for sentinel in self.sentinels:
            sentinel.start()
        # A failover needs every Sentinel to know the replicas and a quorum of its peers; they
        # learn both from the primary's hello channel within a few seconds.
        wait_until(
            lambda: all(
                s._known("REPLICAS") == len(self.servers) - 1
                and s._known("SENTINELS") == len(self.sentinels) - 1
                for s in self.sentinels
            ),
            timeout=timeout,
            what="the Sentinels to discover the replicas and each other",
        )
        return self

    @staticmethod
    def _link_up(server: RedisServer) -> bool:
        try:
            return "master_link_status:up" in server.cli("INFO", "replication")
        except subprocess.CalledProcessError:
            return False

    def primary(self) -> RedisServer:
        """The server every Sentinel currently names as the primary."""
        addresses = {s.master_address() for s in self.sentinels if s.pid is not None}
        addresses.discard(None)
        if len(addresses) != 1:
            raise ServiceError(f"the Sentinels disagree on the primary: {addresses}")
        (address,) = addresses
        assert address is not None
        return self._server_at(address[1])

    def _server_at(self, port: int) -> RedisServer:
        for server in self.servers:
            if server.port == port:
                return server
        raise ServiceError(f"no server of this set listens on port {port}")

    def replicas(self) -> list[RedisServer]:
        primary = self.primary()
        return [server for server in self.servers if server is not primary]

    def kill_primary(self) -> RedisServer:
        """SIGKILL the primary (no shutdown, no final AOF flush): a crashed node."""
        primary = self.primary()
        primary.kill()
        return primary

    def wait_for_primary(
        self, *, excluding: RedisServer | None = None, timeout: float = 60.0
    ) -> RedisServer:
        """Wait until every Sentinel names the same primary (not `excluding`) and it accepts
        writes; returns it."""

        def settled() -> bool:
            addresses = {s.master_address() for s in self.sentinels}
            if len(addresses) != 1 or None in addresses:
                return False
            (address,) = addresses
            if address is None or (excluding is not None and address[1] == excluding.port):
                return False
            try:
                return "role:master" in self._server_at(address[1]).cli("INFO", "replication")
            except subprocess.CalledProcessError:
                return False

        wait_until(settled, timeout=timeout, what="the Sentinels to agree on a primary")
        return self.primary()

    def wait_for_failover(
        self, old: RedisServer, timeout: float = 60.0
    ) -> tuple[RedisServer, float]:
        """Wait until a replica has replaced `old` as the primary; returns it and how long the
        wait took."""
        started = time.monotonic()
        new = self.wait_for_primary(excluding=old, timeout=timeout)
        return new, time.monotonic() - started

    def restart(self, server: RedisServer) -> None:
        """Bring a stopped server back as a replica of the current primary (as a replaced pod
        would come back), and wait until it has synced."""
        server.replica_of = self.primary()
        server.start()
        wait_until(lambda: self._link_up(server), timeout=60, what=f"Redis {server.port} to resync")

    def remove(self) -> None:
        for sentinel in self.sentinels:
            sentinel.remove()
        for server in self.servers:
            server.remove()
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def close(self) -> None:
        self.remove()
