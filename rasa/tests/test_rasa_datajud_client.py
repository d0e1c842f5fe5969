from __future__ import annotations

import asyncio

from actions import cnj
from actions.clients.datajud import DataJudClient, Outcome
from assistente_testbed.fake_datajud import API_KEY, FakeDataJud, case_source

NUMBER = cnj.parse("0000832-35.2018.4.01.3202")


def lookup(fake: FakeDataJud, *, key: str = API_KEY, attempts: int = 3):  # type: ignore[no-untyped-def]
    client = DataJudClient(fake.url, key, timeout_s=2, attempts=attempts, backoff_s=0.01)
    return asyncio.run(client.lookup(NUMBER))


def test_sends_the_documented_query_and_key(datajud: FakeDataJud) -> None:
    datajud.add("trf1", case_source(NUMBER.digits, tribunal="TRF1"))
    result = lookup(datajud)
    assert result.outcome is Outcome.FOUND
    request = datajud.requests[0]
    assert request["path"] == "/api_publica_trf1/_search"
    assert request["headers"]["Authorization"] == f"APIKey {API_KEY}"
    assert request["body"]["query"] == {"match": {"numeroProcesso": "00008323520184013202"}}


def test_found_case_has_movements_newest_first(datajud: FakeDataJud) -> None:
    datajud.add("trf1", case_source(NUMBER.digits, tribunal="TRF1"))
    record = lookup(datajud).record
    assert record is not None
    assert [m.name for m in record.movements] == ["Conclusão", "Juntada de Petição", "Distribuição"]
    assert record.movements[0].complements == ("para despacho",)
    assert record.court_unit == "JEF Adj - Tefé"


def test_latest_degree_wins_and_others_are_listed(datajud: FakeDataJud) -> None:
    datajud.add(
        "trf1",
        case_source(
            NUMBER.digits, tribunal="TRF1", degree="G1", updated="2021-01-01T00:00:00.000Z"
        ),
    )
    datajud.add(
        "trf1",
        case_source(
            NUMBER.digits, tribunal="TRF1", degree="G2", updated="2024-06-01T00:00:00.000Z"
        ),
    )
    result = lookup(datajud)
    assert result.record is not None
    assert result.record.degree == "G2"
    assert result.other_degrees == ("G1",)


def test_not_found_and_sealed(datajud: FakeDataJud) -> None:
    assert lookup(datajud).outcome is Outcome.NOT_FOUND
    datajud.add("trf1", case_source(NUMBER.digits, tribunal="TRF1", secrecy=5))
    assert lookup(datajud).outcome is Outcome.SEALED


def test_retries_transient_failures(datajud: FakeDataJud) -> None:
    datajud.add("trf1", case_source(NUMBER.digits, tribunal="TRF1"))
    datajud.failures_before_success = 2
    assert lookup(datajud, attempts=3).outcome is Outcome.FOUND
    assert len(datajud.requests) == 3


def test_gives_up_as_unavailable(datajud: FakeDataJud) -> None:
    datajud.failures_before_success = 5
    assert lookup(datajud, attempts=2).outcome is Outcome.UNAVAILABLE
    assert len(datajud.requests) == 2


def test_rejected_key_is_its_own_outcome(datajud: FakeDataJud) -> None:
    assert lookup(datajud, key="chave-velha").outcome is Outcome.UNAUTHORIZED


def test_server_down_is_unavailable() -> None:
    fake = FakeDataJud().start()
    url = fake.url
    fake.stop()
    client = DataJudClient(url, API_KEY, timeout_s=1, attempts=2, backoff_s=0.01)
    assert asyncio.run(client.lookup(NUMBER)).outcome is Outcome.UNAVAILABLE
