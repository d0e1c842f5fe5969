"""One truth for names, against a real scrape: Prometheus (Debian's) scrapes the running stack —
API, worker, action server, a Redis exporter — while a citizen talks to it through the API; every
metric a rule, dashboard or runbook reads from those components then exists, and an alert fires
when its condition is made true (Rasa stopped: the backlog alert goes pending)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from assistente_monitoring import queries, rules
from assistente_monitoring.catalogue import load_catalogue, load_third_party
from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.fake_datajud import SAMPLE_FOUND
from assistente_testbed.paths import repo_root
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import ServiceError, wait_until
from assistente_testbed.prometheus import PrometheusServer, ScrapeTarget
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisExporter, RedisServer

RUNBOOKS = repo_root() / "docs" / "runbooks.md"
SCOPE = {"namespace": "local", "assistente": "scrape"}
# Components this stack runs; the operator's names are checked by the operator's own scrape.
COMPONENTS = ("api", "worker", "actions")


@dataclass
class ScrapedStack:
    app: AppProcesses
    prometheus: PrometheusServer
    rasa: RasaStack
    rasa_url: str


def _address(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


@pytest.fixture(scope="module")
def scraped_stack(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    rasa_stack: RasaStack,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ScrapedStack]:
    # A Rasa server of this test's own (on the session's stores and action server), so that
    # stopping it leaves the other suites' Rasa alone.
    rasa_url = rasa_stack.add_server()
    app = AppProcesses.for_tests(
        database_url=postgres_server.create_database("assistente_scrape"),
        redis_url=redis_server.url,
        rasa_url=rasa_url,
        log_dir=tmp_path_factory.mktemp("scrape-logs"),
        extra_env={"ASSISTENTE_WORKER_BACKOFF_MAX_S": "2"},
    )
    # A replica of the session's Redis, as in a cluster: the replica-only series exist too.
    replica = RedisServer(tmp_path_factory.mktemp("redis-replica"), replica_of=redis_server)
    exporters = [RedisExporter(redis_server), RedisExporter(replica)]
    prometheus: PrometheusServer | None = None
    try:
        app.start()
        replica.start()
        for exporter in exporters:
            exporter.start()
        targets = [
            ScrapeTarget("api", _address(app.url), {**SCOPE, "component": "api"}),
            ScrapeTarget("worker", app.worker_metrics_address, {**SCOPE, "component": "worker"}),
            ScrapeTarget(
                "actions", rasa_stack.actions_metrics_address, {**SCOPE, "component": "actions"}
            ),
        ]
        targets += [
            ScrapeTarget("redis", e.address, {**SCOPE, "component": "redis", "pod": f"redis-{i}"})
            for i, e in enumerate(exporters)
        ]
        prometheus = PrometheusServer(
            tmp_path_factory.mktemp("prometheus"),
            targets=targets,
            rule_files=[rules.ASSISTANT_RULES],
        ).start()
        yield ScrapedStack(app, prometheus, rasa_stack, rasa_url)
    finally:
        if prometheus is not None:
            prometheus.remove()
        for exporter in exporters:
            exporter.remove()
        replica.remove()
        app.stop()
        if rasa_url in rasa_stack.server_urls:
            rasa_stack.stop_server(rasa_url)


class Citizen:
    def __init__(self, http: httpx.Client) -> None:
        created = http.post("/api/v1/conversations", json={"channel": "web"})
        assert created.status_code == 201, created.text
        self.http = http
        self.conversation: dict[str, Any] = created.json()
        self.auth = {"Authorization": f"Bearer {self.conversation['token']}"}

    def history(self) -> list[dict[str, Any]]:
        url = f"/api/v1/conversations/{self.conversation['id']}/messages"
        messages: list[dict[str, Any]] = self.http.get(url, headers=self.auth).json()["messages"]
        return messages

    def send(self, text: str) -> int:
        """Post a message; its position in the history."""
        url = f"/api/v1/conversations/{self.conversation['id']}/messages"
        sent = self.http.post(url, json={"text": text}, headers=self.auth)
        assert sent.status_code == 202, sent.text
        return len(self.history())

    def say(self, text: str, expect: str) -> None:
        """Post a message and wait for an answer that contains `expect`."""
        position = self.send(text)
        deadline = time.monotonic() + 90
        while True:
            answers = [m for m in self.history()[position:] if m["role"] in ("bot", "system")]
            if any(expect in m["text"] for m in answers):
                return
            assert time.monotonic() < deadline, f"no answer with {expect!r} to {text!r}"
            time.sleep(0.3)


def _expected_names() -> set[str]:
    """Every name queried anywhere that the running components export."""
    catalogue = load_catalogue()
    third_party = load_third_party()
    ours = {
        exposed
        for metric in catalogue.metrics.values()
        if metric.component in COMPONENTS
        for exposed in metric.exposed_names()
    }
    scraped_here = (
        third_party.names_from("redis-scrape")
        | third_party.names_from("prometheus")
        | third_party.names_from("client-python")
    )
    return queries.queried_names(RUNBOOKS) & (ours | scraped_here)


def test_every_series_we_query_exists_in_a_real_scrape(scraped_stack: ScrapedStack) -> None:
    with httpx.Client(base_url=scraped_stack.app.url, timeout=30) as http:
        citizen = Citizen(http)
        citizen.say("oi, bom dia", "Assistente Digital")
        citizen.say(f"quero ver o andamento do processo {SAMPLE_FOUND}", "Encontrei o processo")
        citizen.say("como tiro certidao negativa criminal", "Fonte:")
        citizen.say("quero falar com um atendente", "posição")

    prometheus = scraped_stack.prometheus
    expected = _expected_names()
    # Every component we query is exercised here except the operator: the list is not empty.
    assert "assistente_turns_total" in expected
    assert "assistente_agent_calls_total" in expected

    def all_present() -> bool:
        return expected <= prometheus.series_names()

    with contextlib.suppress(ServiceError):  # the assertion below names what is missing
        wait_until(all_present, timeout=60, what="every queried series in Prometheus")
    assert expected - prometheus.series_names() == set()
    for rule, health, error in prometheus.rule_health():
        assert health != "err", f"{rule}: {error}"
    # The traffic shows where it should. Every series exists from start-up at 0, so the counts
    # are awaited: the last turn may be a scrape or two away from Prometheus.
    traffic = (
        'sum(assistente_turns_total{assistente="scrape", outcome=~"replied|escalated"}) >= 4',
        'assistente_agent_calls_total{agent="processo", outcome="ok"} > 0',
        'assistente_datajud_request_duration_seconds_count{outcome="ok"} > 0',
        'assistente_knowledge_lookups_total{result="hit"} > 0',
        'assistente_escalations_total{assistente="scrape"} > 0',
    )

    def traffic_missing() -> list[str]:
        return [query for query in traffic if not prometheus.query(query)]

    with contextlib.suppress(ServiceError):  # the assertion below names what is missing
        wait_until(lambda: not traffic_missing(), timeout=60, what="the traffic in Prometheus")
    assert traffic_missing() == []


def test_stopping_rasa_makes_the_backlog_alert_go_pending(scraped_stack: ScrapedStack) -> None:
    scraped_stack.rasa.stop_server(scraped_stack.rasa_url)
    with httpx.Client(base_url=scraped_stack.app.url, timeout=30) as http:
        Citizen(http).send("oi, alguém aí?")

    def states(name: str) -> set[str]:
        return {
            alert["state"]
            for alert in scraped_stack.prometheus.alerts()
            if alert["labels"]["alertname"] == name
            and alert["labels"].get("assistente") == "scrape"
        }

    # The oldest inbound message must wait over a minute: about 70 s on an idle machine.
    wait_until(
        lambda: bool(states("AssistenteInboundBacklog")),
        timeout=180,
        interval=1,
        what="AssistenteInboundBacklog to go pending",
    )
    assert states("AssistenteInboundBacklog") == {"pending"}
    # The worker saw Rasa unavailable and kept the message; AssistenteRasaUnavailable waits for
    # five minutes without any success (the earlier turns still count), so it is not awaited.
    assert scraped_stack.prometheus.query(
        'assistente_rasa_request_duration_seconds_count{assistente="scrape", outcome="unavailable"}'
        " > 0"
    )
    # Nothing was dead-lettered: Rasa down is not a failure of the message.
    assert not scraped_stack.prometheus.query("increase(assistente_dead_letters_total[5m]) > 0")
