"""Prometheus Operator objects and the Grafana dashboards of one assistant.

The alert rules and dashboards are not written here: they come from the ``assistente_monitoring``
package, the same rule file plain Prometheus loads (narrowed to this resource) and the same
dashboards. Every scrape adds the labels the rules group by: ``namespace`` and ``pod`` (the
Prometheus Operator's own), ``assistente`` (the resource) and ``component``.

Each builder returns the object even when its CRD is not served; the reconciler decides from
API discovery what it may apply (``SKIPPABLE_KINDS``) and says so in a condition.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from assistente_monitoring import dashboards, rules

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.models import AssistenteDigital, PostgresMode, StoreMode

MONITORING_API_VERSION = "monitoring.coreos.com/v1"
DASHBOARD_LABEL = dashboards.SIDECAR_LABEL
INSTANCE_POD_LABEL = "__meta_kubernetes_pod_label_app_kubernetes_io_instance"


def _meta(cr: AssistenteDigital, name: str, component: str) -> Manifest:
    return common.metadata(
        cr, common.child_name(cr, name), component, labels=dict(cr.spec.monitoring.labels)
    )


def _endpoint(cr: AssistenteDigital, component: str, port: str) -> Manifest:
    return {
        "port": port,
        "path": "/metrics",
        "interval": cr.spec.monitoring.interval,
        "relabelings": [
            {"sourceLabels": [INSTANCE_POD_LABEL], "targetLabel": "assistente"},
            {"targetLabel": "component", "replacement": component},
        ],
    }


def service_monitor(cr: AssistenteDigital) -> Manifest:
    """The API, through its Service."""
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _meta(cr, "api", "api"),
        "spec": {
            "selector": {"matchLabels": common.selector_labels(cr, "api")},
            "namespaceSelector": {"matchNames": [cr.metadata.namespace]},
            "endpoints": [_endpoint(cr, "api", "http")],
        },
    }


def pod_monitor(cr: AssistenteDigital, component: str, port: str) -> Manifest:
    """A component whose metrics port has no Service (worker, action server, Redis, PostgreSQL)."""
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PodMonitor",
        "metadata": _meta(cr, component, component),
        "spec": {
            "selector": {"matchLabels": common.selector_labels(cr, component)},
            "namespaceSelector": {"matchNames": [cr.metadata.namespace]},
            "podMetricsEndpoints": [_endpoint(cr, component, port)],
        },
    }


def pod_monitors(cr: AssistenteDigital) -> list[Manifest]:
    monitors = [pod_monitor(cr, "worker", "http"), pod_monitor(cr, "actions", "metrics")]
    if cr.spec.redis.mode == StoreMode.IN_CLUSTER:
        monitors.append(pod_monitor(cr, "redis", "metrics"))  # the redis_exporter sidecar
    if cr.spec.postgres.mode == PostgresMode.CLOUDNATIVEPG:
        # CloudNativePG's instance manager serves its metrics on the pods' port "metrics".
        monitors.append(pod_monitor(cr, "postgres", "metrics"))
    return monitors


def prometheus_rule(cr: AssistenteDigital) -> Manifest:
    """monitoring/.../rules/assistente.rules.yml, every selector narrowed to this resource."""
    groups: list[dict[str, Any]] = []
    for group in rules.load_groups(rules.ASSISTANT_RULES):
        narrowed = [
            {
                **rule,
                "expr": rules.scope_expr(rule["expr"], cr.metadata.namespace, cr.metadata.name),
            }
            for rule in group["rules"]
        ]
        groups.append({**group, "rules": narrowed})
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _meta(cr, "alerts", "monitoring"),
        "spec": {"groups": groups},
    }


def dashboard(cr: AssistenteDigital) -> Manifest:
    """The assistant dashboards (overview, pipeline, level 2) for Grafana's sidecar. They are
    the same for every resource (variables pick the assistant), so resources sharing a Grafana
    share one copy of each."""
    meta = _meta(cr, "dashboard", "monitoring")
    meta["labels"][DASHBOARD_LABEL] = "1"
    meta.setdefault("annotations", {})[dashboards.FOLDER_ANNOTATION] = "Assistente Digital"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": _boards()}


@cache
def _boards() -> dict[str, str]:
    # Built once per process: they do not depend on the resource.
    boards = dashboards.render(list(dashboards.ASSISTANT_DASHBOARDS))
    return {
        f"assistente-{name}.json": json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        for name, board in boards.items()
    }


def build(cr: AssistenteDigital) -> list[Manifest]:
    spec = cr.spec.monitoring
    if not spec.enabled:
        return []
    objects: list[Manifest] = []
    if spec.service_monitors:
        objects += [service_monitor(cr), *pod_monitors(cr)]
    if spec.prometheus_rules:
        objects.append(prometheus_rule(cr))
    if spec.grafana_dashboards:
        objects.append(dashboard(cr))
    return objects
