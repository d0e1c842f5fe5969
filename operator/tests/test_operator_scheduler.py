"""The work queue coalesces bursts per object and never runs one object twice at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from assistente_operator.scheduler import Scheduler


async def wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - state is changed by worker threads
            await asyncio.sleep(0.01)


async def test_a_burst_for_one_object_becomes_one_pass() -> None:
    calls: list[tuple[str, str]] = []
    gate = threading.Event()

    def run(namespace: str, name: str) -> None:
        gate.wait(5)
        calls.append((namespace, name))

    scheduler = Scheduler(run, workers=2)
    for _ in range(10):
        scheduler.enqueue("ns", "a")
    scheduler.enqueue("ns", "b")
    assert scheduler.depth == 2
    scheduler.start()
    gate.set()
    await wait_until(lambda: len(calls) == 2)
    await scheduler.stop()
    assert sorted(calls) == [("ns", "a"), ("ns", "b")]


async def test_an_event_during_a_pass_runs_the_object_once_more_never_concurrently() -> None:
    running = 0
    overlap = False
    passes = 0
    started = threading.Event()
    release = threading.Event()

    def run(namespace: str, name: str) -> None:
        nonlocal running, overlap, passes
        running += 1
        overlap = overlap or running > 1
        started.set()
        release.wait(5)
        running -= 1
        passes += 1

    scheduler = Scheduler(run, workers=4)
    scheduler.start()
    scheduler.enqueue("ns", "a")
    await wait_until(started.is_set)
    for _ in range(5):  # events while the first pass runs
        scheduler.enqueue("ns", "a")
    release.set()
    await wait_until(lambda: passes == 2)
    await asyncio.sleep(0.05)
    await scheduler.stop()
    assert passes == 2
    assert not overlap


async def test_a_failing_pass_does_not_stop_the_workers() -> None:
    seen: list[str] = []

    def run(namespace: str, name: str) -> None:
        seen.append(name)
        if name == "bad":
            raise RuntimeError("boom")

    scheduler = Scheduler(run, workers=1)
    scheduler.start()
    scheduler.enqueue("ns", "bad")
    scheduler.enqueue("ns", "good")
    await wait_until(lambda: seen == ["bad", "good"])
    await scheduler.stop()
