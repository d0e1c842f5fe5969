"""A real Prometheus (Debian's package) and Alertmanager on 127.0.0.1, each in a private
directory, run as plain processes (never as system services)."""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

from assistente_testbed.httpjson import get_json, http_ok, post_form, post_json
from assistente_testbed.process import LocalServer, ServiceError, free_port


def find_binary(*names: str, package: str) -> Path:
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise ServiceError(f"{names[0]} not found: run `make setup` (installs {package} with apt)")


@dataclass
class ScrapeTarget:
    """One static target; `labels` become target labels on every series it exposes."""

    job: str
    address: str  # host:port
    labels: dict[str, str] = field(default_factory=dict)
    path: str = "/metrics"


class PrometheusServer(LocalServer):
    """`prometheus` with a generated configuration: static targets, rule files and, optionally,
    an Alertmanager. Short intervals by default, so tests see changes within seconds; the scrape
    timeout equals the interval, which a loaded 2-core machine still meets at 2 s."""

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        targets: Sequence[ScrapeTarget] = (),
        rule_files: Sequence[Path] = (),
        alertmanager_url: str | None = None,
        scrape_interval: str = "2s",
        evaluation_interval: str = "2s",
        retention: str = "2h",
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-prometheus-")),
            owns_base_dir=base_dir is None,
        )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.retention = retention
        self.config_path = self.base_dir / "prometheus.yml"
        self.log_path = self.base_dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> dict[str, Any]:
        jobs: dict[tuple[str, str], list[ScrapeTarget]] = {}
        for target in self.targets:
            jobs.setdefault((target.job, target.path), []).append(target)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": path,
                    "static_configs": [
                        {"targets": [t.address], "labels": dict(t.labels)} for t in group
                    ],
                }
                for (job, path), group in jobs.items()
            ],
        }
        if self.alertmanager_url is not None:
            address = self.alertmanager_url.removeprefix("http://").rstrip("/")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [address]}]}]}
        return config

    def write_config(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def start(self, timeout: float = 60.0) -> Self:
        self.write_config()
        argv = [
            str(find_binary("prometheus", package="prometheus")),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.base_dir / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.host}:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        self._launch(
            f"Prometheus on port {self.port}",
            argv,
            log_path=self.log_path,
            ready=lambda: http_ok(f"{self.url}/-/ready"),
            timeout=timeout,
        )
        return self

    def reload(self) -> None:
        """Apply a changed target list or rule files without a restart."""
        self.write_config()
        post_form(f"{self.url}/-/reload", {})

    def _api(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            body = get_json(f"{self.url}/api/v1/{path}", params)
        except urllib.error.HTTPError as error:
            raise ServiceError(f"Prometheus /api/v1/{path} {params}: {error.read()!r}") from error
        if body.get("status") != "success":
            raise ServiceError(f"Prometheus /api/v1/{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (`metric` labels and `value`)."""
        data = self._api("query", {"query": expr})
        result: list[dict[str, Any]] = data["result"]
        return result

    def series_names(self) -> set[str]:
        """Every metric name Prometheus holds."""
        return set(self._api("label/__name__/values"))

    def targets_health(self) -> dict[str, str]:
        """Scrape URL → health ("up", "down", "unknown") of every active target."""
        data = self._api("targets")
        return {t["scrapeUrl"]: t["health"] for t in data["activeTargets"]}

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (`labels`, `state`, `value`)."""
        alerts: list[dict[str, Any]] = self._api("alerts")["alerts"]
        return alerts

    def rule_health(self) -> list[tuple[str, str, str]]:
        """(rule name, health, last error) of every loaded rule."""
        groups = self._api("rules")["groups"]
        return [
            (rule["name"], rule["health"], rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
        ]


class AlertmanagerServer(LocalServer):
    """`prometheus-alertmanager` with the given configuration and clustering turned off (its
    gossip port would otherwise listen on every interface)."""

    def __init__(
        self, config: dict[str, Any], base_dir: Path | None = None, *, port: int | None = None
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-alertmanager-")),
            owns_base_dir=base_dir is None,
        )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.config = config
        self.config_path = self.base_dir / "alertmanager.yml"
        self.log_path = self.base_dir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        argv = [
            str(
                find_binary(
                    "prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager"
                )
            ),
            f"--config.file={self.config_path}",
            f"--storage.path={self.base_dir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        self._launch(
            f"Alertmanager on port {self.port}",
            argv,
            log_path=self.log_path,
            ready=lambda: http_ok(f"{self.url}/-/ready"),
            timeout=timeout,
        )
        return self

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (`labels`, `annotations`, optional `startsAt`)."""
        post_json(f"{self.url}/api/v2/alerts", alerts)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert it holds, with `status.state` and `status.inhibitedBy`."""
        alerts: list[dict[str, Any]] = get_json(
            f"{self.url}/api/v2/alerts",
            {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"},
        )
        return alerts
