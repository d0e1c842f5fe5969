"""Host-level facts about what the test bed starts, checked with pytest-testinfra: every socket
binds to loopback only, the expected processes run, generated secrets are private, and stopping
leaves no process behind."""

from __future__ import annotations

import re
import stat

import pytest
import testinfra
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.redis import RedisServer
from testinfra.host import Host

LOOPBACK = ("127.0.0.1", "[::1]", "::1")


@pytest.fixture(scope="module")
def host() -> Host:
    return testinfra.get_host("local://")


def _listening_addresses(host: Host, pids: set[int]) -> list[tuple[str, str]]:
    """(address, process name) of every TCP listener owned by one of `pids`."""
    found = []
    for line in host.check_output("ss -ltnpH").splitlines():
        fields = line.split()
        owners = re.findall(r'\("([^"]+)",pid=(\d+)', line)
        for name, pid in owners:
            if int(pid) in pids:
                found.append((fields[3].rsplit(":", 1)[0], name))
    return found


def _pids_of_children(host: Host, marker: str) -> set[int]:
    return {p.pid for p in host.process.filter() if marker in p.args}


@pytest.mark.cluster
def test_control_plane_listens_on_loopback_only(host: Host, kube_cluster: KubeCluster) -> None:
    pids = _pids_of_children(host, str(kube_cluster.workdir))
    listeners = _listening_addresses(host, pids)
    names = {name for _, name in listeners}
    assert {"etcd", "kube-apiserver", "kube-scheduler", "kwok-controller"} <= names
    assert any(name.startswith("kube-controller") for name in names)
    assert all(address in LOOPBACK for address, _ in listeners), listeners


@pytest.mark.cluster
def test_cluster_credentials_are_private(host: Host, kube_cluster: KubeCluster) -> None:
    keys = sorted((kube_cluster.workdir / "clusters" / kube_cluster.name).glob("**/*.key"))
    assert keys, "kwokctl generated a PKI"
    for path in [kube_cluster.kubeconfig, *keys]:
        assert host.file(str(path)).mode & (stat.S_IRWXG | stat.S_IRWXO) == 0, path


def test_postgres_listens_on_loopback_and_keeps_its_password_private(
    host: Host, postgres_server: PostgresServer
) -> None:
    assert host.socket(f"tcp://127.0.0.1:{postgres_server.port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{postgres_server.port}").is_listening
    password_file = host.file(str(postgres_server.password_file))
    assert password_file.mode == 0o600
    assert postgres_server.execute("SHOW listen_addresses").strip() == "127.0.0.1"
    assert postgres_server.execute("SHOW server_version").startswith("15.")
    postmaster = host.process.get(pid=postgres_server.pid)
    assert postmaster.user == "postgres", "PostgreSQL never runs as root"


def test_redis_listens_on_loopback_only(host: Host, redis_server: RedisServer) -> None:
    assert host.socket(f"tcp://127.0.0.1:{redis_server.port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{redis_server.port}").is_listening
    assert redis_server.cli("CONFIG", "GET", "bind").splitlines()[1] == "127.0.0.1"
    assert redis_server.cli("INFO", "server").count("redis_version:7.") == 1


def test_create_database_gives_an_isolated_empty_database(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database("isolated_one")
    postgres_server.execute("CREATE TABLE t (x int)", database="isolated_one")
    assert dsn.endswith("/isolated_one")
    postgres_server.create_database("isolated_one")
    tables = postgres_server.execute(
        "SELECT count(*) FROM pg_tables WHERE tablename = 't'", database="isolated_one"
    )
    assert tables.strip() == "0"
    with pytest.raises(ValueError, match="database name"):
        postgres_server.create_database("bad; DROP")


def _process_tree(host: Host, root: int | None) -> set[int]:
    """`root` and its descendants (PostgreSQL's workers each start a session of their own, so
    process groups do not tell)."""
    assert root is not None
    children: dict[int, list[int]] = {}
    alive: set[int] = set()
    for line in host.check_output("ps -eo pid=,ppid=").splitlines():
        pid, ppid = (int(field) for field in line.split())
        alive.add(pid)
        children.setdefault(ppid, []).append(pid)
    tree: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in alive and pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, []))
    return tree


def test_stopped_services_leave_no_process_behind(host: Host) -> None:
    postgres, redis = PostgresServer(), RedisServer()
    roots: list[int | None] = []
    try:
        postgres.start()
        redis.start()
        roots += [postgres.pid, redis.pid]
        assert len(_process_tree(host, roots[0])) >= 4, "postmaster and its workers"
        assert len(_process_tree(host, roots[1])) >= 1
    finally:
        postgres.remove()
        redis.remove()
    assert not any(_process_tree(host, root) for root in roots)


@pytest.mark.cluster
def test_a_stopped_cluster_leaves_no_process_behind(host: Host) -> None:
    cluster = KubeCluster(nodes=1, third_party_crds=False)
    marker = str(cluster.workdir)
    try:
        cluster.start()
        assert len(_pids_of_children(host, marker)) >= 5
    finally:
        cluster.remove()
    assert not _pids_of_children(host, marker)
