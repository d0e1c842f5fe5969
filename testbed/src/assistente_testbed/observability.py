"""Prometheus, Alertmanager and (optionally) the log store beside `make up`, so a developer
watches the stack live with the same rules, routing and shipping configuration as production.

Everything listens on 127.0.0.1 only; data stays under .local/ between runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from assistente_testbed.paths import repo_root
from assistente_testbed.prometheus import AlertmanagerServer, PrometheusServer, ScrapeTarget
from assistente_testbed.redis import RedisExporter, RedisServer
from assistente_testbed.victorialogs import LogShipper, VictoriaLogsServer

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
VICTORIALOGS_PORT = 9428
# `make up` is one assistant; its series carry the labels a cluster's scrape would add.
LOCAL_LABELS = {"namespace": "local", "assistente": "local"}
ASSISTANT_RULES = (
    repo_root() / "monitoring" / "src" / "assistente_monitoring" / "rules" / "assistente.rules.yml"
)


def local_alertmanager_config() -> dict[str, Any]:
    """The shipped routing and inhibition with receivers that send nothing: locally alerts are
    watched in Alertmanager's UI, and nothing may leave the machine."""
    config: dict[str, Any] = yaml.safe_load(
        (repo_root() / "monitoring" / "alertmanager" / "alertmanager.yml").read_text()
    )
    config["receivers"] = [{"name": receiver["name"]} for receiver in config["receivers"]]
    return config


def start(
    state: Path,
    *,
    targets: dict[str, str],
    redis: RedisServer,
    log_globs: list[str] | None,
    on_cleanup: Callable[[Callable[[], None]], None],
) -> dict[str, str]:
    """Start the servers and return their URLs by name. `targets` maps a component (api,
    worker, ...) to its host:port; `log_globs`, when given, is shipped to a local VictoriaLogs.
    Each server's stop is registered with `on_cleanup` as soon as it runs."""
    urls: dict[str, str] = {}
    exporter = RedisExporter(redis)
    exporter.start()
    on_cleanup(exporter.remove)

    alertmanager = AlertmanagerServer(
        local_alertmanager_config(), state / "alertmanager", port=ALERTMANAGER_PORT
    )
    alertmanager.start()
    on_cleanup(alertmanager.stop)
    urls["Alertmanager"] = alertmanager.url

    scrape = [
        ScrapeTarget(component, address, {**LOCAL_LABELS, "component": component})
        for component, address in targets.items()
    ]
    scrape.append(
        ScrapeTarget(
            "redis", exporter.address, {**LOCAL_LABELS, "component": "redis", "pod": "redis-0"}
        )
    )
    prometheus = PrometheusServer(
        state / "prometheus",
        port=PROMETHEUS_PORT,
        targets=scrape,
        rule_files=[ASSISTANT_RULES],
        alertmanager_url=alertmanager.url,
        scrape_interval="5s",
        evaluation_interval="5s",
        retention="7d",
    )
    prometheus.start()
    on_cleanup(prometheus.stop)
    urls["Prometheus"] = prometheus.url

    if log_globs is not None:
        store = VictoriaLogsServer(state / "victorialogs", port=VICTORIALOGS_PORT)
        store.start()
        on_cleanup(store.stop)
        shipper = LogShipper(log_globs, store.otlp_logs_url, state / "log-shipper")
        shipper.start()
        on_cleanup(shipper.stop)
        urls["Logs (VictoriaLogs)"] = f"{store.url}/select/vmui/"
    return urls
