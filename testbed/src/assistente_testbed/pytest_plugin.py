"""Session fixtures with real services on 127.0.0.1, loaded for every suite (see pyproject.toml).

Every fixture tears its service down at the end of the session, also after a failed test or
Ctrl-C; SIGTERM is turned into the same orderly shutdown.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from assistente_testbed.cluster import KubeCluster
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa_fixtures import fake_datajud, rasa_stack
from assistente_testbed.redis import RedisServer

# The real Rasa stack and the DataJud fake (session scope, started only when a test asks).
__all__ = ["fake_datajud", "kube_cluster", "postgres_server", "rasa_stack", "redis_server"]


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # pytest runs fixture finalizers on KeyboardInterrupt, not on a bare SIGTERM.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """etcd + kube-apiserver + controller-manager + scheduler + kwok with 3 Ready nodes and the
    third-party CRDs (Prometheus Operator, CloudNativePG, Argo CD) installed."""
    cluster = KubeCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
