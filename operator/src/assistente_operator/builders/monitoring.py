"""Prometheus Operator objects and the Grafana dashboard.

Each builder returns the object even when its CRD is not served; the reconciler decides from
API discovery what it may apply (``SKIPPABLE_KINDS``) and says so in a condition.
"""

from __future__ import annotations

import json
from typing import Any

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.models import AssistenteDigital

MONITORING_API_VERSION = "monitoring.coreos.com/v1"
DASHBOARD_LABEL = "grafana_dashboard"


def _meta(cr: AssistenteDigital, name: str, component: str) -> Manifest:
    return common.metadata(
        cr, common.child_name(cr, name), component, labels=dict(cr.spec.monitoring.labels)
    )


def service_monitor(cr: AssistenteDigital) -> Manifest:
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _meta(cr, "api", "api"),
        "spec": {
            "selector": {"matchLabels": common.selector_labels(cr, "api")},
            "namespaceSelector": {"matchNames": [cr.metadata.namespace]},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": cr.spec.monitoring.interval}
            ],
        },
    }


def pod_monitor(cr: AssistenteDigital) -> Manifest:
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PodMonitor",
        "metadata": _meta(cr, "worker", "worker"),
        "spec": {
            "selector": {"matchLabels": common.selector_labels(cr, "worker")},
            "namespaceSelector": {"matchNames": [cr.metadata.namespace]},
            "podMetricsEndpoints": [
                {"port": "http", "path": "/metrics", "interval": cr.spec.monitoring.interval}
            ],
        },
    }


def prometheus_rule(cr: AssistenteDigital) -> Manifest:
    ns = cr.metadata.namespace
    name = cr.metadata.name
    job = f'namespace="{ns}", service="{name}-api"'

    def alert(alert_name: str, expr: str, duration: str, severity: str, summary: str) -> Manifest:
        return {
            "alert": alert_name,
            "expr": expr,
            "for": duration,
            "labels": {"severity": severity, "assistente": name},
            "annotations": {"summary": summary},
        }

    rules = [
        alert(
            "AssistenteApiDown",
            f"sum(up{{{job}}}) == 0",
            "2m",
            "critical",
            f"A API do assistente {ns}/{name} está fora do ar.",
        ),
        alert(
            "AssistenteApiHighErrorRate",
            f'sum(rate(http_requests_total{{{job}, status=~"5.."}}[5m]))'
            f" / sum(rate(http_requests_total{{{job}}}[5m])) > 0.05",
            "10m",
            "warning",
            f"Mais de 5% das requisições à API de {ns}/{name} falham.",
        ),
        alert(
            "AssistenteApiSlow",
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{job}}}[5m]))) > 1",
            "10m",
            "warning",
            f"O p95 da latência da API de {ns}/{name} passa de 1 s.",
        ),
        alert(
            "AssistenteEscalationQueueFull",
            f'max(assistente_escalation_queue_size{{namespace="{ns}"}}) '
            f">= {cr.spec.escalation.queue_limit}",
            "5m",
            "warning",
            f"A fila de atendimento humano de {ns}/{name} atingiu o limite.",
        ),
        alert(
            "AssistenteDeploymentUnavailable",
            f'kube_deployment_status_replicas_available{{namespace="{ns}", '
            f'deployment=~"{name}-(api|worker|nlu|actions)"}} == 0',
            "5m",
            "critical",
            f"Um componente de {ns}/{name} está sem réplicas disponíveis.",
        ),
    ]
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _meta(cr, "alerts", "monitoring"),
        "spec": {"groups": [{"name": f"assistente-digital.{name}", "rules": rules}]},
    }


def _panel(panel_id: int, title: str, expr: str, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "targets": [{"expr": expr, "refId": "A"}],
    }


def dashboard(cr: AssistenteDigital) -> Manifest:
    ns = cr.metadata.namespace
    name = cr.metadata.name
    job = f'namespace="{ns}", service="{name}-api"'
    board = {
        "title": f"Assistente Digital — {ns}/{name}",
        "uid": f"assistente-{ns}-{name}"[:40],
        "schemaVersion": 39,
        "tags": ["assistente-digital"],
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": [
            _panel(
                1, "Requisições por segundo", f"sum(rate(http_requests_total{{{job}}}[5m]))", 0, 0
            ),
            _panel(
                2,
                "Latência p95 (s)",
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(http_request_duration_seconds_bucket{{{job}}}[5m])))",
                12,
                0,
            ),
            _panel(
                3,
                "Fila de atendimento humano",
                f'sum by (team) (assistente_escalation_queue_size{{namespace="{ns}"}})',
                0,
                8,
            ),
            _panel(
                4,
                "Réplicas disponíveis",
                f'kube_deployment_status_replicas_available{{namespace="{ns}", '
                f'deployment=~"{name}-.*"}}',
                12,
                8,
            ),
        ],
    }
    meta = _meta(cr, "dashboard", "monitoring")
    meta["labels"][DASHBOARD_LABEL] = "1"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"assistente-{name}.json": json.dumps(board, indent=2, ensure_ascii=False) + "\n"},
    }


def build(cr: AssistenteDigital) -> list[Manifest]:
    spec = cr.spec.monitoring
    if not spec.enabled:
        return []
    objects: list[Manifest] = []
    if spec.service_monitors:
        objects += [service_monitor(cr), pod_monitor(cr)]
    if spec.prometheus_rules:
        objects.append(prometheus_rule(cr))
    if spec.grafana_dashboards:
        objects.append(dashboard(cr))
    return objects
