"""The highly available stores of the test bed are the real thing: Redis Sentinels promote a
replica when the primary dies and clients follow it; a PostgreSQL replica streams the primary's
WAL, refuses writes, survives a primary restart and can be promoted."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg
from assistente_testbed.postgres import PostgresServer, multi_host_dsn
from assistente_testbed.process import wait_until
from assistente_testbed.redis_ha import RedisSentinelSet
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError


def listening_hosts(port: int) -> set[str]:
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    return {
        line.split()[3].rsplit(":", 1)[0]
        for line in out.splitlines()
        if line.split()[3].endswith(f":{port}")
    }


def test_redis_set_listens_on_loopback_only(redis_sentinel_set: RedisSentinelSet) -> None:
    ports = [s.port for s in redis_sentinel_set.servers]
    ports += [s.port for s in redis_sentinel_set.sentinels]
    for port in ports:
        assert listening_hosts(port) == {"127.0.0.1"}, port
    assert len(redis_sentinel_set.replicas()) == 2


async def test_sentinels_promote_a_replica_and_clients_follow(
    redis_sentinel_set: RedisSentinelSet,
) -> None:
    servers = redis_sentinel_set
    hosts = [(s.host, s.port) for s in servers.sentinels]
    client = Sentinel(hosts, socket_timeout=1).master_for(  # type: ignore[no-untyped-call]
        servers.master_name, decode_responses=True, socket_timeout=1
    )
    await client.set("antes", "1")
    # Acknowledged by a replica before the crash: a promoted replica must have it.
    assert await client.wait(1, 1000) >= 1

    old = servers.kill_primary()
    new, took = servers.wait_for_failover(old)
    assert new is not old
    assert new in servers.servers
    assert took < 30, f"failover took {took:.1f} s"
    assert new.cli("GET", "antes") == "1"

    # The same client object finds the new primary by itself (after at most a few errors).
    async def write_through_client() -> bool:
        try:
            await client.set("depois", "2")
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError):
            return False
        return True

    for _ in range(100):
        if await write_through_client():
            break
        await asyncio.sleep(0.1)
    assert new.cli("GET", "depois") == "2"

    servers.restart(old)
    assert "role:slave" in old.cli("INFO", "replication")
    wait_until(
        lambda: old.cli("GET", "depois") == "2", timeout=30, what="the old primary to resync"
    )
    await client.aclose()


def psql_error(server: PostgresServer, sql: str, database: str) -> str:
    result = server._psql(sql, database=database, check=False)
    return result.stderr


def test_replica_streams_the_primary_and_refuses_writes(
    postgres_pair: tuple[PostgresServer, PostgresServer],
) -> None:
    primary, replica = postgres_pair
    primary.create_database("ha")
    primary.execute("CREATE TABLE eventos (n int)", database="ha")
    primary.execute("INSERT INTO eventos SELECT generate_series(1, 100)", database="ha")
    replica.wait_caught_up()
    assert replica.in_recovery()
    assert not primary.in_recovery()
    assert replica.execute("SELECT count(*) FROM eventos", database="ha").strip() == "100"
    error = psql_error(replica, "INSERT INTO eventos VALUES (0)", "ha")
    assert "read-only transaction" in error
    streaming = primary.execute("SELECT state, sync_state FROM pg_stat_replication").strip()
    assert streaming == "streaming|async"


def test_replica_survives_a_primary_restart_and_is_promoted(
    postgres_pair: tuple[PostgresServer, PostgresServer],
) -> None:
    primary, replica = postgres_pair
    primary.stop()
    primary.start()
    primary.execute("INSERT INTO eventos VALUES (101)", database="ha")
    replica.wait_caught_up()
    assert replica.execute("SELECT max(n) FROM eventos", database="ha").strip() == "101"

    primary.kill()
    replica.promote()
    assert not replica.in_recovery()
    replica.execute("INSERT INTO eventos VALUES (102)", database="ha")

    # A multi-host DSN that asks for a writable server skips the dead primary and finds the
    # promoted one (what the app and Rasa do with the test bed's HA PostgreSQL).
    async def writable_port() -> int:
        connection = await asyncpg.connect(multi_host_dsn([primary, replica], "ha"))
        try:
            return int(await connection.fetchval("SELECT inet_server_port()"))
        finally:
            await connection.close()

    assert asyncio.run(writable_port()) == replica.port
