"""Dashboards as code: each survives a round trip through grafana-foundation-sdk's models, every
panel has a query that parses as PromQL, and they ship in ConfigMaps Grafana's sidecar loads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from assistente_monitoring import dashboards, queries
from assistente_monitoring.promql import analyse
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel

BOARDS = dashboards.render()


@pytest.fixture(scope="module", autouse=True)
def sdk_plugins() -> None:
    # Decoding needs the panel and query types registered (stat, timeseries, prometheus).
    register_default_plugins()


@pytest.mark.parametrize("name", BOARDS)
def test_the_dashboard_round_trips_through_the_sdk_models(name: str) -> None:
    board = BOARDS[name]
    decoded = Dashboard.from_json(board)
    again: dict[str, Any] = json.loads(json.dumps(decoded, cls=JSONEncoder))
    assert again == board
    # Decoding gave typed models (queries, panel options), not raw dicts passed through.
    assert decoded.panels is not None
    for panel in decoded.panels:
        if isinstance(panel, RowPanel):
            continue
        assert isinstance(panel, Panel)
        assert isinstance(panel.options, stat.Options | timeseries.Options), panel.title
        assert panel.targets
        assert all(isinstance(t, prometheus.Dataquery) for t in panel.targets)


@pytest.mark.parametrize("name", BOARDS)
def test_every_panel_has_a_titled_described_parsable_prometheus_query(name: str) -> None:
    board = BOARDS[name]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["title"].strip()
        assert panel.get("description", "").strip(), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel.get("targets"), f"{name}: {panel['title']} has no query"
        for target in panel["targets"]:
            info = analyse(queries.interpolate(target["expr"]))  # raises on a syntax error
            assert info.metric_names, (panel["title"], target["expr"])


@pytest.mark.parametrize("name", BOARDS)
def test_the_layout_fits_the_grid_and_ids_are_unique(name: str) -> None:
    board = BOARDS[name]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0


def test_assistant_dashboards_select_one_assistant_in_every_query() -> None:
    for name in dashboards.ASSISTANT_DASHBOARDS:
        variables = [v["name"] for v in BOARDS[name]["templating"]["list"]]
        assert variables == ["datasource", "namespace", "assistente"]
        for panel in BOARDS[name]["panels"]:
            for target in panel.get("targets", []):
                for selector in analyse(queries.interpolate(target["expr"])).selectors:
                    assert selector.matcher("namespace") == ("=", "tj"), panel["title"]
                    assert selector.matcher("assistente") == ("=", "tjxx"), panel["title"]


def test_uids_and_titles_are_unique() -> None:
    assert len({b["uid"] for b in BOARDS.values()}) == len(BOARDS)
    assert len({b["title"] for b in BOARDS.values()}) == len(BOARDS)


def test_the_configmap_carries_the_sidecar_label_and_every_dashboard() -> None:
    manifest = dashboards.configmap(
        "tjxx-dashboards", "tj", BOARDS, labels={"app.kubernetes.io/instance": "tjxx"}
    )
    assert manifest["metadata"]["labels"] == {
        "app.kubernetes.io/instance": "tjxx",
        "grafana_dashboard": "1",
    }
    assert manifest["metadata"]["annotations"] == {"grafana_folder": "Assistente Digital"}
    assert {key: json.loads(value) for key, value in manifest["data"].items()} == {
        f"{name}.json": board for name, board in BOARDS.items()
    }
    # A ConfigMap holds at most 1 MiB.
    assert len(json.dumps(manifest["data"]).encode()) < 1024 * 1024
