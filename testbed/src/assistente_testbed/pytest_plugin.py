"""Session fixtures with real services on 127.0.0.1, loaded for every suite (see pyproject.toml).

Every fixture tears its service down at the end of the session, also after a failed test or
Ctrl-C; SIGTERM is turned into the same orderly shutdown.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from assistente_testbed import progress
from assistente_testbed.argocd import ArgoCD
from assistente_testbed.browser_fixtures import (
    browser,
    console_url,
    keycloak_launched,
    keycloak_server,
    screenshots,
)
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.images import APP_IMAGES, BackgroundBuild, BuiltImage
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.rasa_fixtures import fake_datajud, rasa_stack
from assistente_testbed.redis import RedisServer
from assistente_testbed.redis_ha import RedisSentinelSet

# The real Rasa stack and the DataJud fake, Keycloak and Chromium, the app's images (session
# scope, started only when a test asks).
__all__ = [
    "app_images",
    "argocd",
    "browser",
    "chaos_ledger",
    "console_url",
    "fake_datajud",
    "keycloak_launched",
    "keycloak_server",
    "kube_cluster",
    "postgres_pair",
    "postgres_server",
    "rasa_stack",
    "real_cluster",
    "redis_sentinel_set",
    "redis_server",
    "screenshots",
]
IMAGE_BUILD = pytest.StashKey[BackgroundBuild]()

# Imported (through `-p`) before pytest captures descriptor 2: long steps stay visible.
progress.keep_terminal()


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # pytest runs fixture finalizers on KeyboardInterrupt, not on a bare SIGTERM.
    raise KeyboardInterrupt(f"signal {signum}")


CHAOS_LEDGER = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def chaos_ledger(request: pytest.FixtureRequest) -> list[str]:
    """Lines a failover test adds (what it sent, what was accepted, what was answered); the
    session prints them at the end, passed or failed."""
    return request.config.stash.setdefault(CHAOS_LEDGER, [])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    lines = config.stash.get(CHAOS_LEDGER, [])
    if lines:
        terminalreporter.section("failovers under load: every accepted message answered once?")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Tests on the real node run last, and their images start building at once, in the
    background, while the other suites run (a cold build takes minutes)."""
    on_node = [
        item
        for item in items
        if {"real_cluster", "app_images"} & set(getattr(item, "fixturenames", ()))
    ]
    items[:] = [item for item in items if item not in on_node] + on_node
    if any("app_images" in getattr(item, "fixturenames", ()) for item in on_node):
        config.stash[IMAGE_BUILD] = BackgroundBuild(APP_IMAGES).start()


def pytest_unconfigure(config: pytest.Config) -> None:
    build = config.stash.get(IMAGE_BUILD, None)
    if build is not None:
        build.cancel()


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


@pytest.fixture(scope="module")
def redis_sentinel_set() -> Iterator[RedisSentinelSet]:
    """A Redis primary, two replicas and three Sentinels (quorum 2, primary declared down after
    1 s). Module scope: failover tests kill servers, so each module gets a fresh set."""
    with RedisSentinelSet() as servers:
        yield servers


@pytest.fixture(scope="module")
def postgres_pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """(primary, replica): the replica is a `pg_basebackup` of the primary that follows it by
    streaming replication and can be promoted. Module scope, like `redis_sentinel_set`."""
    with PostgresServer() as primary, PostgresServer(replica_of=primary) as replica:
        yield primary, replica


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


@pytest.fixture(scope="session")
def real_cluster(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    """The control plane with one kwok node (tainted) and a real node: containerd, kubelet,
    kube-proxy and cluster DNS, in network namespaces of the test bed's own. When the session
    also uses `app_images`, the node starts with them (waiting for their build)."""
    build = request.config.stash.get(IMAGE_BUILD, None)
    images = build.result().values() if build is not None else ()
    cluster = KubeCluster(nodes=1, real_node=True, node_images=images)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def app_images(request: pytest.FixtureRequest, real_cluster: KubeCluster) -> dict[str, BuiltImage]:
    """The project's images (api, worker, rasa, actions, operator) and Redis, built from their
    Dockerfiles (cached by content hash) and in the real node's runtime."""
    build = request.config.stash.get(IMAGE_BUILD, None) or BackgroundBuild(APP_IMAGES).start()
    images = build.result()
    real_cluster.load_images(images.values())
    return images


@pytest.fixture(scope="module")
def argocd() -> Iterator[ArgoCD]:
    """Argo CD syncing this checkout's committed HEAD into a cluster of the module's own (Argo CD
    watches every namespace), registered as `local` and bootstrapped from argocd/bootstrap.

    The cluster (`argocd.cluster`) serves CloudNativePG's CRDs for the operator's database
    objects; the Prometheus Operator's and our own arrive through Argo CD.
    """
    with KubeCluster(third_party_crds=False) as cluster:
        cluster.install_third_party_crds(["cloudnative-pg"])
        server = ArgoCD(cluster)
        try:
            server.start()
            server.register_cluster("local", overlay="local", revision="main")
            server.bootstrap()
            yield server
        finally:
            server.remove()
