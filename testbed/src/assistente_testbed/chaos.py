"""Failures injected under load, and the ledger of what happened to every message.

Each `Fault` breaks one part of an `AssistantStack(ha=True)` the way production breaks: a process
killed with SIGKILL and restarted (as Kubernetes restarts a container), the Redis primary
killed (the Sentinels promote a replica), the PostgreSQL primary restarted, or killed and its
replica promoted. `run_scenario` offers load, injects the fault a few seconds in, waits for every
turn, then reads every conversation's history: each accepted message must have exactly one
reply. The chaos tests (`tests/ha`) and the benchmark (`bench/bench_e2e.py --failovers`) share it.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from assistente_testbed.assistant_stack import AssistantStack
from assistente_testbed.loadgen import LoadGenerator, Verification

# How long a killed process stays down before it is started again (a container restart).
RESTART_DELAY_S = 1.0


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[AssistantStack], str]
    """Blocking: breaks something, brings it back, and says what it did."""


def kill_api(stack: AssistantStack) -> str:
    assert stack.app is not None
    stack.app.api.kill()
    time.sleep(RESTART_DELAY_S)
    stack.app.start_api()
    return "API SIGKILLed and restarted"


def kill_worker(stack: AssistantStack) -> str:
    assert stack.app is not None
    worker = stack.app.workers[0]
    worker.kill()
    time.sleep(RESTART_DELAY_S)
    worker.start()
    return "worker SIGKILLed and restarted"


def kill_rasa(stack: AssistantStack) -> str:
    assert stack.rasa is not None
    stack.rasa.kill_server(0)
    time.sleep(RESTART_DELAY_S)
    stack.rasa.start_server(0)
    return "Rasa server SIGKILLed and restarted"


def kill_actions(stack: AssistantStack) -> str:
    assert stack.rasa is not None
    stack.rasa.kill_actions()
    time.sleep(RESTART_DELAY_S)
    stack.rasa.start_actions()
    return "action server SIGKILLed and restarted"


def kill_redis_primary(stack: AssistantStack) -> str:
    assert stack.redis_set is not None, "needs AssistantStack(ha=True)"
    old = stack.redis_set.kill_primary()
    new, took = stack.redis_set.wait_for_failover(old)
    stack.redis_set.restart(old)
    return (
        f"Redis primary :{old.port} SIGKILLed; Sentinels promoted :{new.port} in {took:.1f} s; "
        f":{old.port} back as a replica"
    )


def restart_postgres_primary(stack: AssistantStack) -> str:
    assert stack.replica is not None, "needs AssistantStack(ha=True)"
    started = time.monotonic()
    stack.postgres.stop()
    stack.postgres.start()
    return f"PostgreSQL primary restarted (down {time.monotonic() - started:.1f} s)"


def promote_postgres_replica(stack: AssistantStack) -> str:
    assert stack.replica is not None, "needs AssistantStack(ha=True)"
    started = time.monotonic()
    stack.postgres.kill()
    stack.replica.promote()
    return f"PostgreSQL primary SIGKILLed, replica promoted in {time.monotonic() - started:.1f} s"


PROCESS_FAULTS = (
    Fault("kill -9 API", kill_api),
    Fault("kill -9 worker", kill_worker),
    Fault("kill -9 Rasa", kill_rasa),
    Fault("kill -9 action server", kill_actions),
)
STORE_FAULTS = (
    Fault("Redis primary killed", kill_redis_primary),
    Fault("PostgreSQL primary restarted", restart_postgres_primary),
    Fault("PostgreSQL replica promoted", promote_postgres_replica),
)
# In this order on one stack: the promotion leaves a single PostgreSQL server behind.
ALL_FAULTS = PROCESS_FAULTS + STORE_FAULTS


@dataclass(frozen=True)
class ScenarioResult:
    fault: str
    what_happened: str
    verification: Verification
    post_retries: int

    @property
    def clean(self) -> bool:
        v = self.verification
        return v.accepted == v.sent and not v.unanswered and not v.duplicated

    def line(self) -> str:
        return (
            f"{self.fault:30} {self.verification.line()}; POSTs retried {self.post_retries} "
            f"— {self.what_happened}"
        )


async def run_scenario(
    stack: AssistantStack,
    fault: Fault,
    *,
    rate: float = 3.0,
    seconds: float = 16.0,
    fault_at_s: float = 4.0,
) -> ScenarioResult:
    """Offer `rate` turns/s for `seconds`, inject `fault` after `fault_at_s`, then check every
    accepted message against the history."""
    assert stack.app is not None
    seed = zlib.crc32(fault.name.encode())
    async with LoadGenerator(stack.app.url, reply_timeout_s=120, seed=seed) as load:
        await load.warm_up(max(4, int(rate * 2)))
        phase = asyncio.create_task(load.run(rate, seconds, drain_s=120))
        await asyncio.sleep(fault_at_s)
        what = await asyncio.to_thread(fault.inject, stack)
        result = await phase
        verification = await load.verify(result.turns, settle_s=60)
    retries = sum(1 for turn in result.turns if turn.attempts > 1)
    return ScenarioResult(fault.name, what, verification, retries)
