"""A small work queue that coalesces reconcile requests per object.

Child events and the periodic resync only need "reconcile this object soon"; a burst of events
for one object becomes one pass, and an object is never reconciled twice at the same time.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import cast

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


class Scheduler:
    """``run(namespace, name)`` is a coroutine function (awaited on the loop) or a plain function
    (run in a thread)."""

    def __init__(self, run: Callable[[str, str], object], *, workers: int) -> None:
        self._run = run
        self._workers = workers
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"reconciler-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def depth(self) -> int:
        return len(self._pending)

    def enqueue(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key in self._active:
            self._dirty.add(key)  # run again once the current pass ends
        elif key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            self._active.add(key)
            try:
                if inspect.iscoroutinefunction(self._run):
                    await cast("Awaitable[object]", self._run(*key))
                else:
                    await asyncio.to_thread(self._run, *key)
            except Exception as error:  # logged; the next event or the resync retries
                logger.warning("reconcile of %s/%s failed: %s", key[0], key[1], error)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(*key)
