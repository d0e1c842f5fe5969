"""Log shipping, for real: the collector runs monitoring/logs/collector.yaml — the same file the
cluster's DaemonSet runs — and ships to VictoriaLogs over OTLP (the protocol Loki 3 ingests
natively too). The whole stack's logs are searchable by protocol and hold no CPF or e-mail."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import wait_until
from assistente_testbed.rasa import RasaStack
from assistente_testbed.redis import RedisServer
from assistente_testbed.tools import ensure_tools
from assistente_testbed.victorialogs import LogShipper, VictoriaLogsServer, collector_config

# What a citizen may type and must never reach a log store unmasked.
CPF = "123.456.789-09"
EMAIL = "maria.silva@example.com"
PERSONAL_DATA = re.compile(
    r"(?<!\d)\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)"  # any CPF written as people write it
    r"|12345678909"  # this test's CPF with its punctuation stripped
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"  # any e-mail address
)
# Random identifiers: long digit runs in them are not CPFs.
ID_FIELDS = {"_stream_id", "conversation_id", "message_id", "request_id", "trace_id", "span_id"}


@pytest.fixture(scope="module")
def victorialogs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaLogsServer]:
    server = VictoriaLogsServer(tmp_path_factory.mktemp("victorialogs"))
    try:
        yield server.start()
    finally:
        server.remove()


def test_the_shipping_config_is_valid_for_both_stores() -> None:
    binary = ensure_tools(("otelcol",)) / "assistente-otelcol"
    for endpoint in (
        "http://127.0.0.1:9428/insert/opentelemetry/v1/logs",  # VictoriaLogs
        "http://127.0.0.1:3100/otlp/v1/logs",  # Loki 3
    ):
        env = dict(
            os.environ,
            ASSISTENTE_LOGS_INCLUDE="/var/log/pods/*/*/*.log",
            ASSISTENTE_LOGS_OTLP_URL=endpoint,
            ASSISTENTE_LOGS_STORAGE_DIR="/var/lib/otelcol",
        )
        result = subprocess.run(
            [str(binary), "validate", f"--config={collector_config()}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def _ship(victorialogs: VictoriaLogsServer, include: list[str], base_dir: Path) -> LogShipper:
    return LogShipper(include, victorialogs.otlp_logs_url, base_dir).start()


def _wait_for(
    victorialogs: VictoriaLogsServer,
    query: str,
    count: int = 1,
    services: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Records of `query` once at least `count` arrived, from every one of `services`."""
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = victorialogs.query(query)
        return len(found) >= count and services <= {r.get("service.name") for r in found}

    wait_until(arrived, timeout=90, what=f"{count} record(s) for {query!r} in VictoriaLogs")
    return found


def test_container_runtime_lines_keep_the_pod_and_the_component(
    victorialogs: VictoriaLogsServer, tmp_path: Path
) -> None:
    """In a cluster the collector reads /var/log/pods/<ns>_<pod>_<uid>/<container>/N.log."""
    pod_dir = tmp_path / "pods" / "tj_tjxx-api-7d9f-x2k4p_0b1c2d3e-aaaa-bbbb-cccc-000000000001"
    (pod_dir / "api").mkdir(parents=True)
    record = {
        "ts": "2026-11-25T12:00:00.250000+00:00",
        "level": "WARNING",
        "logger": "assistente_app.queue",
        "message": "fila cheia",
        "protocol": "20261125-004217-3",
        "request_id": "req-cri-1",
    }
    lines = [
        f"2026-11-25T12:00:00.251000000Z stdout F {json.dumps(record)}",
        "2026-11-25T12:00:01.000000000Z stderr F uma linha que não é JSON",
    ]
    (pod_dir / "api" / "0.log").write_text("\n".join(lines) + "\n")
    shipper = _ship(victorialogs, [f"{tmp_path}/pods/*/*/*.log"], tmp_path / "shipper")
    try:
        # At least once: an export that timed out after it was stored is sent again.
        found, *_ = _wait_for(victorialogs, 'request_id:="req-cri-1"')
        plain, *_ = _wait_for(victorialogs, '"uma linha que não é JSON"')
    finally:
        shipper.remove()
    assert found["_msg"] == "fila cheia"
    assert found["protocol"] == "20261125-004217-3"
    assert found["severity_text"] == "WARNING"
    assert found["_time"] == "2026-11-25T12:00:00.25Z"
    assert found["service.name"] == "api"
    assert found["k8s.namespace.name"] == "tj"
    assert found["k8s.pod.name"] == "tjxx-api-7d9f-x2k4p"
    assert found["k8s.container.name"] == "api"
    assert plain["service.name"] == "api"


@pytest.fixture(scope="module")
def shipped_stack(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    rasa_stack: RasaStack,
    victorialogs: VictoriaLogsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AppProcesses]:
    """API + worker (+ the session's Rasa server and action server) with every log file shipped."""
    logs = tmp_path_factory.mktemp("stack-logs")
    app = AppProcesses.for_tests(
        database_url=postgres_server.create_database("assistente_logs"),
        redis_url=redis_server.url,
        rasa_url=rasa_stack.url,
        log_dir=logs,
    )
    include = [f"{logs}/*.log", f"{rasa_stack.log_dir}/*.log"]
    shipper = _ship(victorialogs, include, tmp_path_factory.mktemp("shipper"))
    try:
        yield app.start()
    finally:
        app.stop()
        shipper.remove()


def test_the_stack_logs_are_searchable_by_protocol_and_hold_no_personal_data(
    shipped_stack: AppProcesses, victorialogs: VictoriaLogsServer
) -> None:
    with httpx.Client(base_url=shipped_stack.url, timeout=30) as http:
        created = http.post("/api/v1/conversations", json={"channel": "web"})
        assert created.status_code == 201, created.text
        conversation = created.json()
        auth = {"Authorization": f"Bearer {conversation['token']}"}
        text = f"Olá, meu CPF é {CPF} e meu e-mail é {EMAIL}, quero saber do meu processo"
        sent = http.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            json={"text": text},
            headers=auth,
        )
        assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 90
        while True:
            history = http.get(
                f"/api/v1/conversations/{conversation['id']}/messages", headers=auth
            ).json()
            if any(m["role"] == "bot" for m in history["messages"]):
                break
            assert time.monotonic() < deadline, f"no bot reply: {history}"
            time.sleep(0.5)

    # Every test database numbers its protocols from 1, and the session's action server logs
    # other tests' conversations too: the search is by protocol, the check by component.
    protocol = conversation["protocol"]
    records = _wait_for(
        victorialogs, f'protocol:="{protocol}"', services=frozenset({"api", "worker"})
    )
    ours = [r for r in records if r["service.name"] in ("api", "worker")]
    assert {r.get("conversation_id") for r in ours} == {conversation["id"]}

    everything = victorialogs.query("*", limit=100_000)
    assert any(r.get("service.name") == "rasa" for r in everything)
    assert any(r.get("service.name") == "actions" for r in everything)
    leaks = [
        f"{record.get('service.name')}.{field}: {value}"
        for record in everything
        for field, value in record.items()
        if field not in ID_FIELDS and PERSONAL_DATA.search(str(value))
    ]
    assert leaks == []


@pytest.mark.cluster
def test_the_cluster_base_runs_one_shipper_per_node_with_the_same_config(
    kube_cluster: KubeCluster,
) -> None:
    built = subprocess.run(
        [str(kube_cluster.bin_dir / "kustomize"), "build", str(collector_config().parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    documents = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap"]
    assert config_map["data"]["collector.yaml"] == collector_config().read_text()
    kube_cluster.apply(documents)
    nodes = len(kube_cluster.kubectl("get", "nodes", "-o", "name").stdout.split())

    def one_per_node() -> bool:
        status = json.loads(
            kube_cluster.kubectl(
                "-n", "assistente-logs", "get", "daemonset", "log-shipper", "-o", "json"
            ).stdout
        )["status"]
        return bool(status.get("numberReady") == status.get("desiredNumberScheduled") == nodes)

    wait_until(one_per_node, timeout=120, what="a ready log shipper on every node")
    kube_cluster.kubectl("-n", "assistente-logs", "get", "statefulset", "victoria-logs")
