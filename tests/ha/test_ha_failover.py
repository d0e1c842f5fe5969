"""Real failovers under load, with zero accepted messages lost.

One stack with the highly available stores (Redis primary + 2 replicas + 3 Sentinels; PostgreSQL
primary + synchronous streaming replica), Rasa and its action server, the API and the worker.
Simulated citizens keep sending (3 turns/s, open loop) while one part is broken a few seconds in:
each process in turn is SIGKILLed and restarted, then the Redis primary is killed, the PostgreSQL
primary is restarted, and finally killed with its replica promoted. After each, every
conversation's history must show each accepted message answered exactly once. The ledger of
each scenario is printed at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from assistente_testbed.assistant_stack import AssistantStack
from assistente_testbed.chaos import ALL_FAULTS, Fault, run_scenario
from assistente_testbed.paths import state_dir


@pytest.fixture(scope="module")
def ha_stack() -> Iterator[AssistantStack]:
    with AssistantStack(ha=True, log_dir=state_dir() / "ha-failover") as stack:
        yield stack


@pytest.mark.parametrize("fault", ALL_FAULTS, ids=[fault.name for fault in ALL_FAULTS])
async def test_every_accepted_message_is_answered_once(
    ha_stack: AssistantStack, fault: Fault, chaos_ledger: list[str]
) -> None:
    result = await run_scenario(ha_stack, fault)
    chaos_ledger.append(result.line())
    print(result.line())
    v = result.verification
    assert v.sent > 20, "the load ran"
    assert v.accepted == v.sent, f"every POST is accepted, with retries: {result.line()}"
    assert v.unanswered == [], f"lost: {result.line()}"
    assert v.duplicated == [], f"answered twice: {result.line()}"
