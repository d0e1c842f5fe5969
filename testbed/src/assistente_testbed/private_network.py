"""A private network namespace for a process that binds more than it should.

Argo CD 3.2's application controller serves its metrics on 0.0.0.0 with no flag to change that.
The test bed may listen on loopback only, so the controller runs in a network namespace of its
own: its only interface is that namespace's loopback, and the few host services it needs (the
kube-apiserver, the repo-server, Redis) are forwarded into it on the same port numbers, so its
kubeconfig and flags stay unchanged. The namespace has no name (nothing host-global to clean
up): it lives as long as its holder process and goes away with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from assistente_testbed.process import ServiceError, wait_until

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class PrivateNetwork:
    """A network namespace whose 127.0.0.1:<port> reaches the host's 127.0.0.1:<port>."""

    def __init__(self, ports: Sequence[int], *, env: Mapping[str, str] | None = None) -> None:
        self.ports = list(ports)
        self.env = dict(env) if env is not None else None
        self._holder: subprocess.Popen[bytes] | None = None
        self._listeners: list[socket.socket] = []
        self._stopping = threading.Event()

    @property
    def namespace(self) -> Path:
        if self._holder is None:
            raise ServiceError("the private network is not started")
        return Path(f"/proc/{self._holder.pid}/ns/net")

    @property
    def holder_pid(self) -> int:
        if self._holder is None:
            raise ServiceError("the private network is not started")
        return self._holder.pid

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv`, run inside the namespace."""
        return ["nsenter", f"--net={self.namespace}", "--", *argv]

    def start(self) -> Self:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--", "sleep", "infinity"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        own = Path("/proc/self/ns/net").stat().st_ino

        def separate() -> bool:
            with contextlib.suppress(FileNotFoundError):
                return self.namespace.stat().st_ino != own
            return False

        wait_until(separate, timeout=10, what="a new network namespace", interval=0.05)
        subprocess.run(self.command(["ip", "link", "set", "lo", "up"]), check=True)
        self._open_listeners()
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _open_listeners(self) -> None:
        errors: list[BaseException] = []

        def inside() -> None:
            # setns changes only this thread's namespace; the sockets it creates stay there.
            try:
                _setns(self.namespace)
                for port in self.ports:
                    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    listener.bind(("127.0.0.1", port))
                    listener.listen(64)
                    self._listeners.append(listener)
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        if errors:
            raise ServiceError(f"cannot listen inside the private network: {errors[0]}")

    def port_open(self, port: int) -> bool:
        """Whether something listens on `port` inside the namespace (its loopback)."""
        answer: list[bool] = []

        def inside() -> None:
            try:
                _setns(self.namespace)
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.settimeout(0.5)
                    answer.append(probe.connect_ex(("127.0.0.1", port)) == 0)
            except OSError:
                answer.append(False)

        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        return bool(answer and answer[0])

    def _accept(self, listener: socket.socket) -> None:
        port = listener.getsockname()[1]
        while not self._stopping.is_set():
            try:
                inner, _ = listener.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(("127.0.0.1", port), timeout=10)
                outer.settimeout(None)
            except OSError:
                inner.close()
                continue
            for source, sink in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.close()
        self._listeners.clear()
        if self._holder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._holder.pid, signal.SIGKILL)
            self._holder.wait(timeout=10)
            self._holder = None
