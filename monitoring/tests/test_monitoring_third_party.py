"""The checked list of third-party metric names (catalogue/third_party.yaml), checked:
CloudNativePG's against its source at the pinned version, redis_exporter's against a real scrape
of a Redis primary and replica, prometheus_client's in-process. Then the Redis rules run for real
in Prometheus on those series, and a real failover fires the failover alert."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml
from assistente_monitoring import rules
from assistente_monitoring.catalogue import load_third_party
from assistente_testbed.gomodules import module_dir
from assistente_testbed.process import wait_until
from assistente_testbed.prometheus import PrometheusServer, ScrapeTarget
from assistente_testbed.redis import RedisExporter, RedisServer

THIRD_PARTY = load_third_party()
SCOPE = {"namespace": "local", "assistente": "redis-check"}


def cnpg_metric_names() -> set[str]:
    """Every metric the CloudNativePG instance manager exports by default, read from its source:
    the collector's own gauges and `cnpg_<query>_<column>` of the default monitoring queries."""
    source = THIRD_PARTY.sources["cnpg-source"]
    root = module_dir(source["module"], source["version_key"])
    collector, queries_file = (root / path for path in source["files"])
    names = {
        f"cnpg_collector_{name}"
        for name in re.findall(
            r"Namespace:\s*PrometheusNamespace,\s*Subsystem:\s*subsystem,\s*Name:\s*\"(\w+)\"",
            collector.read_text(),
        )
    }
    config_map: dict[str, Any] = yaml.safe_load(queries_file.read_text())
    for query, spec in yaml.safe_load(config_map["data"]["queries"]).items():
        for column in spec["metrics"]:
            ((name, mapping),) = column.items()
            if mapping["usage"] != "LABEL":
                names.add(f"cnpg_{query}_{name}")
    return names


def test_cloudnativepg_names_exist_in_its_source() -> None:
    exported = cnpg_metric_names()
    assert "cnpg_collector_up" in exported  # the parse found the collector
    assert "cnpg_pg_replication_lag" in exported  # and the default queries
    assert THIRD_PARTY.names_from("cnpg-source") - exported == set()


def test_client_python_names_exist_in_a_real_registry() -> None:
    exposition = prometheus_client.generate_latest().decode()
    exposed = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", exposition, re.M))
    assert THIRD_PARTY.names_from("client-python") - exposed == set()


@dataclass
class RedisPair:
    primary: RedisServer
    replica: RedisServer
    prometheus: PrometheusServer


@pytest.fixture
def redis_pair(tmp_path: Path) -> Iterator[RedisPair]:
    """A primary and its replica, each with the exporter sidecar, scraped by a Prometheus that
    runs the assistant rules; the pods are named as in a cluster."""
    servers: list[Any] = []
    try:
        primary = RedisServer(tmp_path / "redis-0", appendonly=False).start()
        servers.append(primary)
        replica = RedisServer(tmp_path / "redis-1", appendonly=False, replica_of=primary).start()
        servers.append(replica)
        targets = []
        for pod, redis in (("redis-0", primary), ("redis-1", replica)):
            exporter = RedisExporter(redis).start()
            servers.append(exporter)
            labels = {**SCOPE, "component": "redis", "pod": pod}
            targets.append(ScrapeTarget("redis", exporter.address, labels))
        prometheus = PrometheusServer(
            tmp_path / "prometheus", targets=targets, rule_files=[rules.ASSISTANT_RULES]
        ).start()
        servers.append(prometheus)
        yield RedisPair(primary, replica, prometheus)
    finally:
        for server in reversed(servers):
            server.remove()


def _alerts(prometheus: PrometheusServer, name: str) -> list[dict[str, Any]]:
    return [a for a in prometheus.alerts() if a["labels"]["alertname"] == name]


def test_redis_exporter_names_exist_and_the_redis_rules_act_on_them(redis_pair: RedisPair) -> None:
    prometheus = redis_pair.prometheus
    expected = THIRD_PARTY.names_from("redis-scrape") | THIRD_PARTY.names_from("prometheus")

    def replica_linked() -> bool:
        # Both pods scraped in their first roles: the failover alert counts the pods that were
        # primary, so the old primary must have been seen as one before the switch.
        found = prometheus.query('redis_master_link_up{pod="redis-1"} == 1')
        primary_seen = prometheus.query('redis_instance_info{pod="redis-0", role="master"}')
        return expected <= prometheus.series_names() and bool(found) and bool(primary_seen)

    wait_until(replica_linked, timeout=120, what="Prometheus to scrape both exporters")
    assert expected - prometheus.series_names() == set()
    for rule, health, error in prometheus.rule_health():
        assert health != "err", f"{rule}: {error}"

    def healthy_pair_quiet() -> bool:
        # A rule evaluated between the two exporters' first scrapes may have seen a Redis up and
        # no primary yet; the evaluations after both scrapes must clear it.
        return not _alerts(prometheus, "AssistenteRedisNoPrimary")

    wait_until(healthy_pair_quiet, timeout=60, what="AssistenteRedisNoPrimary to stay clear")
    assert not _alerts(prometheus, "AssistenteRedisFailover")

    # Sentinel's move, by hand: the replica becomes the primary, the old primary follows it.
    redis_pair.replica.cli("REPLICAOF", "NO", "ONE")
    redis_pair.primary.cli("REPLICAOF", redis_pair.replica.host, str(redis_pair.replica.port))

    def failover_firing() -> bool:
        return any(a["state"] == "firing" for a in _alerts(prometheus, "AssistenteRedisFailover"))

    wait_until(failover_firing, timeout=120, what="AssistenteRedisFailover to fire")
    (alert,) = _alerts(prometheus, "AssistenteRedisFailover")
    assert alert["labels"] == {
        "alertname": "AssistenteRedisFailover",
        "severity": "warning",
        "team": "plataforma",
        **SCOPE,
    }
    assert float(alert["value"]) == 2

    # Both Redis gone: the exporters report redis_up 0 and the cause alert goes pending.
    redis_pair.primary.stop()
    redis_pair.replica.stop()

    def redis_down_pending() -> bool:
        return any(a["state"] == "pending" for a in _alerts(prometheus, "AssistenteRedisDown"))

    wait_until(redis_down_pending, timeout=120, what="AssistenteRedisDown to go pending")
