"""Dashboards as code (grafana-foundation-sdk), and the ConfigMaps that ship them to Grafana.

Grafana's dashboard sidecar (kube-prometheus-stack's `grafana.sidecar.dashboards`) loads every
ConfigMap labelled `grafana_dashboard: "1"`; the annotation `grafana_folder` puts the
dashboards of one assistant in one folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from assistente_monitoring.dashboards import boards

SIDECAR_LABEL = "grafana_dashboard"
FOLDER_ANNOTATION = "grafana_folder"

# Dashboards about one assistant (the operator ships them with each AssistenteDigital resource).
ASSISTANT_DASHBOARDS: dict[str, Callable[[], dashboard_builders.Dashboard]] = {
    "overview": boards.overview,
    "pipeline": boards.pipeline,
    "level2": boards.level2,
}
# The operator's own dashboard (one per cluster, with the operator's install base).
OPERATOR_DASHBOARDS: dict[str, Callable[[], dashboard_builders.Dashboard]] = {
    "operator": boards.operator,
}
DASHBOARDS = {**ASSISTANT_DASHBOARDS, **OPERATOR_DASHBOARDS}


def to_json(builder: dashboard_builders.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a plain dict), panels numbered in order."""
    model = builder.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    encoded = json.dumps(model, cls=JSONEncoder, ensure_ascii=False)
    result: dict[str, Any] = json.loads(encoded)
    return result


def render(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Dashboard JSON models by name (all of them by default)."""
    chosen = names if names is not None else list(DASHBOARDS)
    return {name: to_json(DASHBOARDS[name]()) for name in chosen}


def configmap(
    name: str,
    namespace: str,
    dashboards: dict[str, dict[str, Any]],
    *,
    labels: dict[str, str] | None = None,
    folder: str = "Assistente Digital",
) -> dict[str, Any]:
    """A ConfigMap that Grafana's sidecar loads: one `<name>.json` key per dashboard."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**(labels or {}), SIDECAR_LABEL: "1"},
            "annotations": {FOLDER_ANNOTATION: folder},
        },
        "data": {
            f"{key}.json": json.dumps(board, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
            for key, board in sorted(dashboards.items())
        },
    }
