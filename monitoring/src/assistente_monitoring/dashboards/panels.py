"""Building blocks shared by the dashboards: variables, selectors and panel shapes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common, dashboard

DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["assistente-digital"]
# Rate windows follow the scrape interval Grafana knows about.
RATE = "$__rate_interval"


def assistant_selector(**matchers: str) -> str:
    """`{namespace="$namespace", assistente="$assistente", ...}` for the chosen assistant."""
    parts = ['namespace="$namespace"', 'assistente="$assistente"']
    parts += [
        f"{label}{value}" if value[:1] in "=!~" else f'{label}="{value}"'
        for label, value in matchers.items()
    ]
    return "{" + ", ".join(parts) + "}"


def datasource_variable() -> dashboard_builders.DatasourceVariable:
    return (
        dashboard_builders.DatasourceVariable("datasource")
        .label("Fonte de dados")
        .type("prometheus")
    )


def _label_variable(name: str, label: str, query: str) -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
    )


def assistant_variables() -> list[cogbuilder.Builder[dashboard.VariableModel]]:
    """Data source, then namespace and assistant, each listing only what Prometheus has seen."""
    return [
        datasource_variable(),
        _label_variable("namespace", "Namespace", 'label_values(up{assistente!=""}, namespace)'),
        _label_variable(
            "assistente",
            "Assistente",
            'label_values(up{namespace="$namespace", assistente!=""}, assistente)',
        ),
    ]


def board(uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .readonly()
    )


def query(expr: str, legend: str = "", ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref_id).range()
    )


def _ref_ids() -> list[str]:
    return [chr(ord("A") + i) for i in range(26)]


def graph(
    title: str,
    description: str,
    unit: str,
    queries: list[tuple[str, str]],
    *,
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
) -> timeseries.Panel:
    """A time series panel; `queries` are (expression, legend) pairs."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for (expr, legend), ref_id in zip(queries, _ref_ids(), strict=False):
        panel = panel.with_target(query(expr, legend, ref_id))
    return panel


def single(
    title: str,
    description: str,
    unit: str,
    expr: str,
    *,
    width: int = 6,
    height: int = 4,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    """A big number; `thresholds` are (from value, colour) steps, the first from None."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(query(expr))
    )
    if thresholds is not None:
        steps = [dashboard.Threshold(value=value, color=color) for value, color in thresholds]
        panel = panel.thresholds(
            dashboard_builders.ThresholdsConfig()
            .mode(dashboard.ThresholdsMode.ABSOLUTE)
            .steps(steps)
        )
    return panel


def row(title: str) -> dashboard_builders.Row:
    return dashboard_builders.Row(title)
