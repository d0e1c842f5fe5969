"""The log store and the log shipper on 127.0.0.1: VictoriaLogs and the OpenTelemetry Collector
running monitoring/logs/collector.yaml, both built from Go modules by hack/build-tools.sh."""

from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from assistente_testbed.httpjson import http_ok
from assistente_testbed.paths import repo_root
from assistente_testbed.process import LocalServer, free_port
from assistente_testbed.tools import ensure_tools


def collector_config() -> Path:
    """The shipping configuration, the same one the cluster's DaemonSet runs."""
    return repo_root() / "monitoring" / "logs" / "collector.yaml"


class VictoriaLogsServer(LocalServer):
    """VictoriaLogs: accepts OTLP (and Loki's push API) and answers LogsQL queries."""

    def __init__(
        self, base_dir: Path | None = None, *, port: int | None = None, retention: str = "7d"
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-victorialogs-")),
            owns_base_dir=base_dir is None,
        )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.retention = retention
        self.log_path = self.base_dir / "victoria-logs.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def otlp_logs_url(self) -> str:
        return f"{self.url}/insert/opentelemetry/v1/logs"

    def start(self, timeout: float = 30.0) -> Self:
        binary = ensure_tools(("victorialogs",)) / "victoria-logs"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(binary),
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.base_dir / 'data'}",
            f"-retentionPeriod={self.retention}",
            "-loggerLevel=WARN",
        ]
        self._launch(
            f"VictoriaLogs on port {self.port}",
            argv,
            log_path=self.log_path,
            ready=lambda: http_ok(f"{self.url}/health"),
            timeout=timeout,
        )
        return self

    def query(self, logsql: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Records matching a LogsQL query (one JSON object per record)."""
        request = urllib.request.Request(  # noqa: S310 (loopback URL)
            f"{self.url}/select/logsql/query",
            data=urllib.parse.urlencode({"query": logsql, "limit": str(limit)}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            lines = response.read().decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class LogShipper(LocalServer):
    """The OpenTelemetry Collector tailing `include` (absolute globs) and sending to
    `otlp_logs_url`."""

    def __init__(
        self,
        include: Sequence[str],
        otlp_logs_url: str,
        base_dir: Path | None = None,
        *,
        environment: str = "local",
        tenant: str = "assistente",
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-logshipper-")),
            owns_base_dir=base_dir is None,
        )
        self.include = include
        self.otlp_logs_url = otlp_logs_url
        self.environment = environment
        self.tenant = tenant
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.log_path = self.base_dir / "collector.log"

    def start(self, timeout: float = 30.0) -> Self:
        binary = ensure_tools(("otelcol",)) / "assistente-otelcol"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        env = dict(
            os.environ,
            # A YAML flow list: the configuration reads the variable as YAML.
            ASSISTENTE_LOGS_INCLUDE="[" + ", ".join(self.include) + "]",
            ASSISTENTE_LOGS_OTLP_URL=self.otlp_logs_url,
            ASSISTENTE_LOGS_TENANT=self.tenant,
            ASSISTENTE_LOGS_STORAGE_DIR=str(self.base_dir / "storage"),
            ASSISTENTE_LOGS_ENVIRONMENT=self.environment,
            ASSISTENTE_LOGS_HEALTH_ADDR=f"127.0.0.1:{self.health_port}",
            ASSISTENTE_LOGS_METRICS_HOST="127.0.0.1",
            ASSISTENTE_LOGS_METRICS_PORT=str(self.metrics_port),
        )
        argv = [str(binary), f"--config={collector_config()}"]
        self._launch(
            "the log shipper",
            argv,
            log_path=self.log_path,
            ready=lambda: http_ok(f"http://127.0.0.1:{self.health_port}/"),
            timeout=timeout,
            env=env,
        )
        return self
