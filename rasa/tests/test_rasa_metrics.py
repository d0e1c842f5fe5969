"""The action server's metrics: every custom action belongs to an agent, the text exposition is
well formed, and the DataJud and knowledge-base metrics move with the work they count."""

from __future__ import annotations

import asyncio
import re

import actions
import pytest
from actions import metrics
from actions.clients.datajud import DataJudClient
from actions.cnj import parse
from assistente_testbed.fake_datajud import API_KEY, FakeDataJud, sample_cases

SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})? (?P<value>[-+0-9.eInf]+)$"
)


def samples() -> dict[str, float]:
    found: dict[str, float] = {}
    for line in metrics.render().splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        match = SAMPLE.match(line)
        assert match is not None, f"not a Prometheus sample: {line!r}"
        found[match["name"] + "{" + (match["labels"] or "") + "}"] = float(match["value"])
    return found


def test_every_custom_action_belongs_to_an_agent() -> None:
    names = {getattr(actions, cls)().name() for cls in actions.__all__}
    assert names == set(metrics.AGENT_OF_ACTION)


def test_the_exposition_is_well_formed_and_starts_every_series_at_zero() -> None:
    found = samples()
    assert found['assistente_agent_calls_total{agent="processo",outcome="error"}'] >= 0
    assert 'assistente_knowledge_lookups_total{result="miss"}' in found
    assert (
        'assistente_datajud_request_duration_seconds_bucket{outcome="timeout",le="+Inf"}' in found
    )
    for name, value in found.items():
        assert value >= 0, name


def test_a_histogram_counts_into_its_buckets_cumulatively() -> None:
    before = samples()
    metrics.AGENT_DURATION.observe(0.3, agent="confirmacao")
    after = samples()

    def delta(key: str) -> float:
        return after[key] - before.get(key, 0.0)

    prefix = 'assistente_agent_duration_seconds_bucket{agent="confirmacao",le='
    assert delta(prefix + '"0.25"}') == 0
    assert delta(prefix + '"0.5"}') == 1
    assert delta(prefix + '"+Inf"}') == 1
    assert delta('assistente_agent_duration_seconds_count{agent="confirmacao"}') == 1


def test_labels_must_be_the_declared_ones() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        metrics.KNOWLEDGE_LOOKUPS.inc(outcome="hit")


def test_datajud_lookups_are_timed_by_outcome(datajud: FakeDataJud) -> None:
    number = parse("00008323520184013202")
    sample_cases(datajud)
    found = samples()
    client = DataJudClient(datajud.url, API_KEY, timeout_s=2, attempts=1)
    asyncio.run(client.lookup(number))
    # Nothing listens on port 9 of the loopback: no HTTP answer at all counts as a timeout.
    unreachable = DataJudClient("http://127.0.0.1:9", API_KEY, timeout_s=0.5, attempts=1)
    asyncio.run(unreachable.lookup(number))
    after = samples()
    key = 'assistente_datajud_request_duration_seconds_count{{outcome="{}"}}'
    assert after[key.format("ok")] == found[key.format("ok")] + 1
    assert after[key.format("timeout")] == found[key.format("timeout")] + 1
