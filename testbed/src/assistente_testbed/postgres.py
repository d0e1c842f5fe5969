"""A real PostgreSQL server in a private directory, listening on 127.0.0.1 only."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Self
from urllib.parse import quote

from assistente_testbed.process import (
    LocalServer,
    ManagedProcess,
    ServiceError,
    free_port,
    wait_until,
)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SUPERUSER = "postgres"


def find_pg_bin(preferred_major: str = "15") -> Path:
    """The server binaries: $ASSISTENTE_PG_BIN, else Debian's layout (15 preferred)."""
    override = os.environ.get("ASSISTENTE_PG_BIN")
    if override:
        return Path(override)
    root = Path("/usr/lib/postgresql")
    candidates = sorted(root.glob("*/bin/postgres"), reverse=True) if root.exists() else []
    for candidate in candidates:
        if candidate.parent.parent.name == preferred_major:
            return candidate.parent
    if candidates:
        return candidates[0].parent
    raise ServiceError(
        "PostgreSQL server binaries not found: run `make setup` (installs postgresql-15 with apt) "
        "or set ASSISTENTE_PG_BIN"
    )


class PostgresServer(LocalServer):
    """initdb + postgres, owned by an unprivileged user because PostgreSQL refuses to run as root.

    `fast=True` turns off fsync: fine for tests and benchmarks of our code, never for real data.
    `replica_of` makes it a hot standby of another server: its data directory is a
    `pg_basebackup` of that primary and it follows it by streaming replication (through a physical
    replication slot, so a restarted primary keeps the WAL the replica still needs);
    `promote()` turns it into a primary.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        fast: bool = True,
        max_connections: int = 300,
        replica_of: PostgresServer | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        """`options`: extra server settings (`-c key=value`), e.g. statement logging."""
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-pg-")),
            owns_base_dir=base_dir is None,
        )
        self.host = "127.0.0.1"
        self.port_file = self.base_dir / "port"
        # A server kept across commands (`make cluster`) keeps its port too.
        saved = int(self.port_file.read_text()) if self.port_file.exists() else None
        self.port = port or saved or free_port()
        self.user = SUPERUSER
        self.fast = fast
        self.max_connections = max_connections
        self.bin_dir = find_pg_bin()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.password_file = self.base_dir / "password"
        self.log_path = self.base_dir / "postgres.log"
        self._os_user = "postgres" if os.geteuid() == 0 else None
        self.password = ""
        self.replica_of = replica_of
        self.options = dict(options or {})

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def _chown(self, path: Path) -> None:
        if self._os_user is not None:
            shutil.chown(path, user=self._os_user, group=self._os_user)

    def _prepare_directories(self, password: str) -> None:
        """The password file (0600) and the data and socket directories, owned by the server's
        OS user."""
        self.password = password
        self.password_file.touch(mode=0o600)
        self.password_file.write_text(self.password + "\n")
        self._chown(self.password_file)
        for directory in (self.socket_dir, self.data_dir):
            directory.mkdir(exist_ok=True)
            self._chown(directory)
        self.data_dir.chmod(0o700)

    def _initdb(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # The server's OS user must be able to reach its own files under our directory.
        self.base_dir.chmod(0o755)
        if self.password_file.exists():
            self.password = self.password_file.read_text().strip()
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.replica_of is not None:
            self._base_backup(self.replica_of)
            return
        self._prepare_directories(secrets.token_urlsafe(24))
        initdb = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--pwfile",
                str(self.password_file),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self._os_user,
            check=False,
        )
        if initdb.returncode != 0:
            raise ServiceError(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()}")

    @property
    def slot_name(self) -> str:
        return f"replica_{self.port}"

    def _base_backup(self, primary: PostgresServer) -> None:
        """Copy the primary's data directory over its replication protocol (`-R` writes
        `standby.signal` and the connection to follow)."""
        self._prepare_directories(primary.password)
        backup = subprocess.run(
            [
                str(self.bin_dir / "pg_basebackup"),
                "--host", primary.host, "--port", str(primary.port), "--username", self.user,
                "--pgdata", str(self.data_dir),
                "--wal-method", "stream", "--checkpoint", "fast",
                "--create-slot", "--slot", self.slot_name,
                "--write-recovery-conf", "--no-password",
            ],
            env=dict(os.environ, PGPASSWORD=self.password),
            capture_output=True, text=True, user=self._os_user, check=False,
        )  # fmt: skip
        if backup.returncode != 0:
            raise ServiceError(
                f"pg_basebackup failed ({backup.returncode}): {backup.stderr.strip()}"
            )

    def in_recovery(self) -> bool:
        """True while this server is a standby (it replays the primary's WAL)."""
        return self.execute("SELECT pg_is_in_recovery()").strip() == "t"

    def promote(self, timeout: float = 60.0) -> None:
        """Turn this standby into a primary (what a failover controller does)."""
        self.execute(f"SELECT pg_promote(true, {int(timeout)})")
        wait_until(lambda: not self.in_recovery(), timeout=timeout, what="the promotion")
        self.replica_of = None

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until this standby has replayed everything its primary had written when called
        (a test that must read its own writes from the replica waits here first)."""
        primary = self.replica_of
        if primary is None:
            return
        target = primary.execute("SELECT pg_current_wal_insert_lsn()").strip()

        def replayed() -> bool:
            lag = self.execute(f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())")
            return float(lag.strip() or "1") <= 0

        wait_until(replayed, timeout=timeout, what=f"the replica to replay up to {target}")

    def _server_options(self) -> list[str]:
        options = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": str(self.max_connections),
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
        }
        if self.fast:
            options |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options |= self.options
        return [arg for key, value in options.items() for arg in ("-c", f"{key}={value}")]

    def start(self, timeout: float = 60.0) -> Self:
        self._initdb()
        self.port_file.write_text(f"{self.port}\n")
        self.log_path.touch()
        self._chown(self.log_path)
        self._process = ManagedProcess(
            "postgres",
            [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), *self._server_options()],
            log_path=self.log_path,
            user=self._os_user,
            # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients instead of waiting.
            stop_signal=signal.SIGINT,
        )
        self._process.start()
        process = self._process

        def ready() -> bool:
            process.check_alive()
            return self._psql("SELECT 1", check=False).returncode == 0

        wait_until(
            ready, timeout=timeout, what=f"PostgreSQL on port {self.port}", log_path=self.log_path
        )
        return self

    # -- a server that outlives the command that started it (`make cluster`) ------------------
    def detach(self) -> None:
        """Leaves the server running after this process ends; `stop_detached` stops it."""
        self._process = None

    def _postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError):
            return None
        return pid

    def attach(self) -> Self:
        """This object for a server a previous command left running in `base_dir`."""
        if self._postmaster_pid() is None:
            raise ServiceError(f"no PostgreSQL running in {self.base_dir}")
        self.password = self.password_file.read_text().strip()
        return self

    def stop_detached(self, timeout: float = 30.0) -> bool:
        """Stops a server left running in `base_dir` (fast shutdown: clients are disconnected,
        nothing is lost); True if one was running."""
        pid = self._postmaster_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGINT)
        wait_until(
            lambda: self._postmaster_pid() is None,
            timeout=timeout,
            what=f"PostgreSQL in {self.base_dir} to stop",
            log_path=self.log_path,
        )
        return True

    def _psql(
        self, sql: str, *, database: str = "postgres", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="2")
        return subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=check,
        )

    def execute(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL with psql and return its unaligned output."""
        return self._psql(sql, database=database).stdout

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if it exists); returns its DSN."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"database name must match {_IDENTIFIER.pattern}: {name!r}")
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def ensure_database(self, name: str) -> str:
        """The database `name`, created if missing (data kept across runs); returns its DSN."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"database name must match {_IDENTIFIER.pattern}: {name!r}")
        # `name` matched _IDENTIFIER above, so it cannot break out of the literal.
        query = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"  # noqa: S608
        exists = self._psql(query).stdout.strip()
        if exists != "1":
            self._psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def ensure_owned_database(self, name: str, password: str) -> str:
        """A login role `name` with no other privilege, owning the database `name` (created if
        missing, data kept) that no other role may connect to: a component's own database, as
        a DBA would set it up. The role's password is set to `password` each time. Returns the
        database's DSN for that role.

        The SQL goes to psql on stdin, so the password is in no command line and no error."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"role and database name must match {_IDENTIFIER.pattern}: {name!r}")
        if not password or "'" in password or "\\" in password:
            raise ValueError("the password must be non-empty, without quotes or backslashes")
        script = (
            f"SELECT 'CREATE ROLE \"{name}\"' WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT FROM pg_roles WHERE rolname = '{name}') \\gexec\n"
            f'ALTER ROLE "{name}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
            f"PASSWORD '{password}';\n"
            f'SELECT \'CREATE DATABASE "{name}" OWNER "{name}"\' WHERE NOT EXISTS '
            f"(SELECT FROM pg_database WHERE datname = '{name}') \\gexec\n"
            f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC;\n'
        )
        env = dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="2")
        argv = [str(self.bin_dir / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.user]
        result = subprocess.run(
            [*argv, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"],
            input=script,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            # psql quotes the failing statement, which may be the one holding the password.
            reason = result.stderr.strip().replace(password, "***")
            raise ServiceError(f"creating role and database {name} failed: {reason}")
        return f"postgresql://{name}:{quote(password, safe='')}@{self.host}:{self.port}/{name}"


def multi_host_dsn(
    servers: list[PostgresServer], database: str, *, target_session_attrs: str = "read-write"
) -> str:
    """A libpq-style DSN naming several servers: the client tries them in order and keeps the
    first that matches `target_session_attrs` (`read-write` finds the primary after a promotion,
    `prefer-standby` a replica while one is up). asyncpg and libpq both read it."""
    first = servers[0]
    hosts = ",".join(f"{s.host}:{s.port}" for s in servers)
    password = quote(first.password, safe="")
    return (
        f"postgresql://{first.user}:{password}@{hosts}/{database}"
        f"?target_session_attrs={target_session_attrs}"
    )
