"""The Alertmanager configuration: amtool accepts it, routes every case and every alert of our
rules to its team's receiver, and a real Alertmanager inhibits symptoms while their cause fires."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_monitoring import rules
from assistente_testbed.paths import repo_root
from assistente_testbed.process import wait_until
from assistente_testbed.prometheus import AlertmanagerServer

CONFIG = repo_root() / "monitoring" / "alertmanager" / "alertmanager.yml"
ROUTE_CASES = repo_root() / "monitoring" / "alertmanager" / "routes-test.yaml"
SCOPE = {"namespace": "tj", "assistente": "tjxx"}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("amtool")
    assert found is not None, "amtool not found: run `make setup` (apt prometheus-alertmanager)"
    return subprocess.run([found, *args], capture_output=True, text=True, check=False)


def routed_to(labels: dict[str, str]) -> list[str]:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def test_amtool_accepts_the_configuration() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    "case", yaml.safe_load(ROUTE_CASES.read_text()), ids=lambda c: c["labels"]["alertname"]
)
def test_routing_case(case: dict[str, Any]) -> None:
    labels = {key: str(value) for key, value in case["labels"].items()}
    verified = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={','.join(case['receivers'])}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _expected_receiver(severity: str, team: str) -> str:
    if team == "atendimento":
        return "atendimento-chat"
    if severity == "info":
        return "blackhole"
    return f"{team}-{'pager' if severity == 'critical' else 'ticket'}"


def test_every_alert_of_our_rules_reaches_its_team() -> None:
    for rule in rules.load_rules():
        if rule.kind != "alert":
            continue
        labels = {"alertname": rule.name, **rule.labels, **SCOPE}
        expected = _expected_receiver(rule.labels["severity"], rule.labels["team"])
        assert routed_to(labels) == [expected], (rule.name, rule.labels)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    # The shipped receivers point at an in-cluster relay; here nothing may leave the machine,
    # so every webhook points at a closed loopback port (the routing tree is unchanged).
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = "http://127.0.0.1:9/" + receiver["name"]
    server = AlertmanagerServer(config, tmp_path / "alertmanager")
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name}}


def _states(server: AlertmanagerServer) -> dict[tuple[str, str], list[str]]:
    """(alertname, assistente) -> the alerts inhibiting it (empty when active)."""
    return {
        (a["labels"]["alertname"], a["labels"].get("assistente", "")): sorted(
            a["status"]["inhibitedBy"]
        )
        for a in server.alerts()
    }


def test_a_cause_inhibits_its_symptoms_for_the_same_assistant_only(
    alertmanager: AlertmanagerServer,
) -> None:
    page = {"severity": "critical", "team": "assistente", "namespace": "tj"}
    alertmanager.post_alerts(
        [
            _alert("AssistenteRasaUnavailable", assistente="tjxx", **page),
            _alert("AssistenteInboundBacklog", assistente="tjxx", **page),
            _alert(
                "AssistenteReplyErrorBudgetBurn",
                assistente="tjxx",
                slo="replies-availability",
                **page,
            ),
            # Another court's backlog has no cause firing: it must still page.
            _alert("AssistenteInboundBacklog", assistente="tjyy", **page),
        ]
    )

    def settled() -> bool:
        states = _states(alertmanager)
        return len(states) == 4 and bool(states[("AssistenteInboundBacklog", "tjxx")])

    wait_until(settled, timeout=30, what="Alertmanager to apply the inhibition rules")
    states = _states(alertmanager)
    assert states[("AssistenteRasaUnavailable", "tjxx")] == []
    assert states[("AssistenteInboundBacklog", "tjyy")] == []
    assert len(states[("AssistenteInboundBacklog", "tjxx")]) == 1
    assert len(states[("AssistenteReplyErrorBudgetBurn", "tjxx")]) == 1


def test_a_critical_alert_silences_the_warning_of_the_same_name(
    alertmanager: AlertmanagerServer,
) -> None:
    common = {"team": "plataforma", **SCOPE}
    alertmanager.post_alerts(
        [
            _alert(
                "AssistentePostgresReplicationLag", severity="critical", pod="tjxx-pg-2", **common
            ),
            _alert(
                "AssistentePostgresReplicationLag", severity="warning", pod="tjxx-pg-2", **common
            ),
            _alert("AssistenteRedisFailover", severity="warning", **common),
        ]
    )

    def inhibited() -> dict[str, list[str]]:
        return {
            a["labels"]["severity"] + ":" + a["labels"]["alertname"]: a["status"]["inhibitedBy"]
            for a in alertmanager.alerts()
        }

    wait_until(
        lambda: bool(inhibited().get("warning:AssistentePostgresReplicationLag")),
        timeout=30,
        what="the warning to be inhibited",
    )
    states = inhibited()
    assert states["critical:AssistentePostgresReplicationLag"] == []
    assert states["warning:AssistenteRedisFailover"] == []
