"""Monitoring of an assistant as the operator renders it — the plain rule file narrowed to the
resource, scrape objects whose ports exist on the pods, the dashboards — and the operator's own
metrics, as the catalogue names them and as a real operator process serves them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_monitoring import cli, dashboards, queries, rules
from assistente_monitoring.catalogue import load_catalogue
from assistente_monitoring.promql import analyse
from assistente_operator import metrics
from assistente_operator.builders import build_children
from assistente_operator.builders import monitoring as monitoring_builders
from assistente_operator.models import AssistenteDigital, Phase
from assistente_operator.reconcile.reconciler import InvalidSpecError, _result_of
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

OPERATOR_DIR = Path(__file__).resolve().parents[1]
SAMPLE = OPERATOR_DIR / "config/samples/assistentedigital.yaml"
RUNBOOKS = OPERATOR_DIR.parent / "docs" / "runbooks.md"


def cr_named(name: str, namespace: str, **spec: Any) -> AssistenteDigital:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": namespace, "uid": "u-1"}
    body["spec"].update(spec)
    return AssistenteDigital.from_body(body)


def children(cr: AssistenteDigital) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in build_children(cr)}


def test_the_prometheus_rule_is_the_plain_file_narrowed_to_the_resource() -> None:
    rule = monitoring_builders.prometheus_rule(cr_named("tjxx", "tj"))
    plain = rules.load_groups(rules.ASSISTANT_RULES)
    rendered = rule["spec"]["groups"]
    assert [g["name"] for g in rendered] == [g["name"] for g in plain]
    for group, original in zip(rendered, plain, strict=True):
        for narrowed, source in zip(group["rules"], original["rules"], strict=True):
            assert {k: v for k, v in narrowed.items() if k != "expr"} == {
                k: v for k, v in source.items() if k != "expr"
            }
            assert narrowed["expr"] == rules.scope_expr(source["expr"], "tj", "tjxx")
            for selector in analyse(narrowed["expr"]).selectors:
                assert selector.matcher("namespace") == ("=", "tj")
                assert selector.matcher("assistente") == ("=", "tjxx")


def _container_ports(pod_template: dict[str, Any]) -> set[str]:
    return {
        port["name"]
        for container in pod_template["spec"]["containers"]
        for port in container.get("ports", [])
    }


def test_every_scraped_port_exists_on_the_component_pods() -> None:
    cr = cr_named("tjxx", "tj", redis={"mode": "inCluster"})
    objects = children(cr)
    pods = {
        "worker": objects[("Deployment", "tjxx-worker")]["spec"]["template"],
        "actions": objects[("Deployment", "tjxx-actions")]["spec"]["template"],
        "redis": objects[("StatefulSet", "tjxx-redis")]["spec"]["template"],
    }
    monitors = {
        m["metadata"]["name"]: m for (kind, _), m in objects.items() if kind == "PodMonitor"
    }
    for component, template in pods.items():
        monitor = monitors[f"tjxx-{component}"]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] in _container_ports(template), component
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            template["metadata"]["labels"].items()
        )
        assert {"targetLabel": "component", "replacement": component} in endpoint["relabelings"]
    api = objects[("ServiceMonitor", "tjxx-api")]
    service = objects[("Service", "tjxx-api")]
    assert api["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_metrics_ports_are_open_to_prometheus() -> None:
    objects = children(cr_named("tjxx", "tj", redis={"mode": "inCluster"}))
    for name, port in (("tjxx-actions", 9102), ("tjxx-redis", 9121), ("tjxx-worker", 9101)):
        policy = objects[("NetworkPolicy", name)]
        assert any(
            "from" not in rule and {"protocol": "TCP", "port": port} in rule["ports"]
            for rule in policy["spec"]["ingress"]
        ), name


def test_the_operators_podmonitor_port_is_open_in_its_network_policy() -> None:
    """operator/config: the port the operator's PodMonitor scrapes is a port of its pod that
    its NetworkPolicy lets Prometheus (from any namespace) reach."""
    config = OPERATOR_DIR / "config"
    monitor = yaml.safe_load((config / "prometheus/podmonitor.yaml").read_text())
    deployment = yaml.safe_load((config / "manager/deployment.yaml").read_text())
    policy = yaml.safe_load((config / "manager/networkpolicy.yaml").read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {
        port["name"]: port["containerPort"]
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for port in container.get("ports", [])
    }
    scraped = ports[endpoint["port"]]
    assert monitor["spec"]["selector"] == policy["spec"]["podSelector"]
    assert any(
        "from" not in rule and {"protocol": "TCP", "port": scraped} in rule["ports"]
        for rule in policy["spec"]["ingress"]
    )


def test_the_dashboard_configmap_holds_the_assistant_dashboards() -> None:
    configmap = monitoring_builders.dashboard(cr_named("tjxx", "tj"))
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(configmap["data"]) == {
        f"assistente-{name}.json" for name in dashboards.ASSISTANT_DASHBOARDS
    }


def _registered() -> dict[str, MetricWrapperBase]:
    return {
        c._name + ("_total" if c._type == "counter" else ""): c
        for c in vars(metrics).values()
        if isinstance(c, MetricWrapperBase)
    }


def test_the_operator_registers_the_catalogued_metrics() -> None:
    own = {n: m for n, m in load_catalogue().metrics.items() if m.component == "operator"}
    registered = _registered()
    assert set(registered) == set(own)
    for name, metric in own.items():
        assert registered[name]._type == metric.type
        assert set(registered[name]._labelnames) == set(metric.labels)
    phases = load_catalogue().allowed_values(own["assistente_operator_resources"], "phase")
    assert set(phases or ()) == set(metrics.PHASES)


def test_the_inventory_sums_children_and_phases_across_resources() -> None:
    inventory = metrics.Inventory()
    inventory.record("a/x", kinds=["Deployment", "Deployment", "Service"], phase=Phase.READY)
    inventory.record("b/y", kinds=["Deployment"], phase=Phase.DEGRADED)

    def gauge(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert gauge("assistente_operator_managed_objects", kind="Deployment") == 3
    assert gauge("assistente_operator_resources", phase="Degraded") == 1
    inventory.forget("b/y")
    assert gauge("assistente_operator_managed_objects", kind="Deployment") == 2
    assert gauge("assistente_operator_resources", phase="Degraded") == 0


class _TemporaryError(Exception):
    temporary = True


def test_failed_passes_are_counted_by_what_kopf_does_with_them() -> None:
    assert _result_of(InvalidSpecError("x")) == "invalid_spec"
    assert _result_of(_TemporaryError()) == "temporary_error"
    assert _result_of(RuntimeError("x")) == "permanent_error"


@pytest.mark.cluster
def test_a_running_operator_serves_every_operator_metric_we_query(
    kube: Any, operator: Any, namespace: str, poll: Callable[..., Any]
) -> None:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": "tjmetrics", "namespace": namespace}
    kube.apply([body])

    poll(
        lambda: operator.sample("assistente_operator_resources", phase="Ready") >= 1,
        what="the operator to report a Ready resource in its metrics",
    )
    text: str = operator.metrics()
    assert operator.sample("assistente_operator_reconciles_total", result="success") >= 1
    assert operator.sample("assistente_operator_managed_objects", kind="Deployment") >= 4
    assert "assistente_operator_reconcile_duration_seconds_bucket" in text
    exposed = set(re.findall(r"^([a-z_:][a-z0-9_:]*)[{ ]", text, re.M))
    operator_names = {
        exposed_name
        for metric in load_catalogue().metrics.values()
        if metric.component == "operator"
        for exposed_name in metric.exposed_names()
    }
    queried = queries.queried_names(RUNBOOKS)
    assert (queried & operator_names) - exposed == set()
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= exposed


PROMETHEUS_BASE = OPERATOR_DIR / "config/prometheus"


@pytest.mark.parametrize("name", sorted(cli.operator_base()))
def test_the_install_base_monitoring_files_are_generated_from_monitoring(name: str) -> None:
    expected = cli.render_yaml(cli.operator_base()[name])
    assert (PROMETHEUS_BASE / name).read_text() == expected, "run `make operator-monitoring`"


def test_the_operator_podmonitor_scrapes_a_port_the_deployment_has() -> None:
    monitor = yaml.safe_load((PROMETHEUS_BASE / "podmonitor.yaml").read_text())
    deployment = yaml.safe_load((OPERATOR_DIR / "config/manager/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert env["ASSISTENTE_OPERATOR_METRICS"] == f"0.0.0.0:{ports[endpoint['port']]}"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )


@pytest.mark.cluster
def test_the_install_base_monitoring_applies_to_a_cluster(kube: Any) -> None:
    cluster = kube.cluster
    built = subprocess.run(
        [str(cluster.bin_dir / "kustomize"), "build", str(PROMETHEUS_BASE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    documents = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert {d["kind"] for d in documents} == {"PodMonitor", "PrometheusRule", "ConfigMap"}
    if cluster.kubectl("get", "namespace", "assistente-operator-system", check=False).returncode:
        cluster.kubectl("create", "namespace", "assistente-operator-system")
    cluster.apply(documents)
    for document in documents:
        name = document["metadata"]["name"]
        namespace = "assistente-operator-system"
        cluster.kubectl("-n", namespace, "get", document["kind"].lower(), name)
