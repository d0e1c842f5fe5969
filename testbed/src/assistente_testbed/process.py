"""Starting, waiting for and stopping local server processes without leaving orphans."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


class ServiceError(RuntimeError):
    """A local service could not be started or did not become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    log_path: Path | None = None,
) -> None:
    """Poll `condition` until it holds; on timeout say what was awaited and show the log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    detail = ""
    if log_path is not None and log_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-30:]
        detail = f"\n--- last lines of {log_path} ---\n" + "\n".join(tail)
    raise ServiceError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


class ManagedProcess:
    """One server process in its own session, so stopping it takes its children too."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def check_alive(self) -> None:
        if self._popen is not None and self._popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace").splitlines()[-30:]
            raise ServiceError(
                f"{self.name} exited with code {self._popen.returncode}\n" + "\n".join(tail)
            )

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a crash, not a shutdown (chaos tests)."""
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait(timeout=15)
        self._popen = None

    def stop(self, timeout: float = 15.0) -> None:
        if self._popen is None:
            return
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, self.stop_signal)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._popen.pid, signal.SIGKILL)
                self._popen.wait(timeout=timeout)
        # Children that outlived the leader still belong to its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen = None


class Lifecycle:
    """`start()` and `close()` as a context manager; a start that fails half-way closes what it
    had started before the error propagates."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalServer(Lifecycle):
    """A server run from one private directory: stopping keeps its data, removing deletes the
    directory too when the server made it itself. Subclasses implement `start()`."""

    def __init__(self, base_dir: Path, *, owns_base_dir: bool) -> None:
        self.base_dir = base_dir
        self._owns_base_dir = owns_base_dir
        self._process: ManagedProcess | None = None

    def start(self) -> Self:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server's main process, while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _launch(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start the server's process, then wait until `ready()` holds; fail at once, with the
        log's tail, if the process exits first."""
        self._process = ManagedProcess(name, argv, log_path=log_path, env=env)
        self._process.start()
        process = self._process

        def alive_and_ready() -> bool:
            process.check_alive()
            return ready()

        wait_until(alive_and_ready, timeout=timeout, what=name, log_path=log_path)

    def kill(self) -> None:
        """SIGKILL the server (its data directory stays, so `start()` brings it back)."""
        if self._process is not None:
            self._process.kill()
            self._process = None

    def remove(self) -> None:
        self.stop()
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def close(self) -> None:
        self.remove()
