"""Detached local processes that outlive the command that started them (`make cluster`),
tracked by pid files under .local/ so a later command can stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from assistente_testbed.paths import state_dir
from assistente_testbed.process import ManagedProcess


def pid_file(name: str) -> Path:
    return state_dir() / f"{name}.pid"


def log_file(name: str) -> Path:
    return state_dir() / "logs" / f"{name}.log"


def running_pid(name: str) -> int | None:
    path = pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError):
        path.unlink(missing_ok=True)
        return None
    return pid


def start(name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Start `argv` in its own session unless it already runs; returns its pid."""
    existing = running_pid(name)
    if existing is not None:
        return existing
    process = ManagedProcess(name, argv, log_path=log_file(name), env=env)
    process.start()
    assert process.pid is not None
    pid_file(name).write_text(f"{process.pid}\n")
    return process.pid


def stop(name: str, timeout: float = 15.0) -> bool:
    """Stop the process group of `name`; True if something was running."""
    pid = running_pid(name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    pid_file(name).unlink(missing_ok=True)
    return True
