"""Benchmark of the app API: accepted messages/s and latency of POST .../messages with real
PostgreSQL + Redis, and idle WebSockets held per GiB of API memory.

Run: .venv/bin/python app/bench/bench_app.py [--seconds 15] [--concurrency 32] [--sockets 2000]

Everything runs on this machine: PostgreSQL (fsync on unless --fast), Redis (AOF everysec),
one uvicorn API process, and this load generator (aiohttp) competing for the same cores, so
the figures are a floor for a dedicated API core.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import free_port, port_open
from assistente_testbed.redis import RedisServer

GIB = 1024**3


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def open_conversations(
    session: aiohttp.ClientSession, base: str, n: int
) -> list[dict[str, str]]:
    result = []
    for _ in range(n):
        async with session.post(f"{base}/api/v1/conversations", json={"channel": "web"}) as r:
            assert r.status == 201, await r.text()
            result.append(await r.json())
    return result


async def load(
    base: str, seconds: float, concurrency: int, pid: int
) -> tuple[int, int, list[float], float]:
    """Returns (accepted, errors, latencies, API CPU seconds) of the measured window only."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        conversations = await open_conversations(session, base, 200)
        # Round-robin over conversations: spreads rows and rate-limit keys like real traffic.
        picks = itertools.cycle(conversations)
        latencies: list[float] = []
        errors = 0

        async def one_client(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                conversation = next(picks)
                started = time.perf_counter()
                async with session.post(
                    f"{base}/api/v1/conversations/{conversation['id']}/messages",
                    json={"text": "Gostaria de saber o andamento do meu processo."},
                    headers={"Authorization": f"Bearer {conversation['token']}"},
                ) as response:
                    await response.read()
                    ok = response.status == 202
                if record:
                    if ok:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors += 1

        # Warm-up (connection pools, prepared statements), not measured.
        warm_until = time.perf_counter() + 2
        await asyncio.gather(*(one_client(warm_until, False) for _ in range(concurrency)))
        cpu_before = cpu_seconds(pid)
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(one_client(stop_at, True) for _ in range(concurrency)))
        return len(latencies), errors, latencies, cpu_seconds(pid) - cpu_before


async def baseline(base: str, seconds: float, concurrency: int) -> int:
    """GET /healthz with the same clients: the trivial-endpoint denominator of the ratio."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.perf_counter() + seconds
        done = 0

        async def one_client() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                async with session.get(f"{base}/healthz") as response:
                    await response.read()
                    done += response.status == 200

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        return done


async def idle_sockets(base: str, pid: int, count: int) -> tuple[int, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        conversations = await open_conversations(session, base, 50)
        await asyncio.sleep(1)
        before = rss_bytes(pid)
        sockets = []
        for index in range(count):
            conversation = conversations[index % len(conversations)]
            ws = await asyncio.wait_for(
                session.ws_connect(
                    f"{base}/api/v1/conversations/{conversation['id']}/ws", compress=0
                ),
                timeout=10,
            )
            await ws.send_json({"token": conversation["token"]})
            message = await ws.receive_json(timeout=10)
            assert message["type"] == "ready", message
            sockets.append(ws)
            if (index + 1) % 500 == 0:
                print(f"  {index + 1} open", flush=True)
        await asyncio.sleep(2)
        after = rss_bytes(pid)
        per_socket = (after - before) / count
        return count, per_socket


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--fast", action="store_true", help="PostgreSQL without fsync")
    args = parser.parse_args()

    print(f"starting PostgreSQL (fsync {'off' if args.fast else 'on'}) and Redis ...", flush=True)
    with PostgresServer(fast=args.fast) as postgres, RedisServer() as redis:
        dsn = postgres.create_database("assistente_bench")
        port = free_port()
        env = {
            **os.environ,
            "ASSISTENTE_DATABASE_URL": dsn,
            "ASSISTENTE_REDIS_URL": redis.url,
            "ASSISTENTE_RATE_LIMIT_PER_MINUTE": "1000000",
            "ASSISTENTE_CONVERSATION_CREATE_PER_MINUTE": "1000000",
            "ASSISTENTE_QUEUE_MAX_LENGTH": "10000000",
            # The idle-socket count spreads 2,000 sockets over 50 conversations.
            "ASSISTENTE_WS_MAX_PER_CONVERSATION": "1000",
            "ASSISTENTE_LOG_LEVEL": "WARNING",
        }
        api_bin = str(Path(sys.executable).parent / "assistente-api")
        subprocess.run([api_bin, "migrate"], env=env, check=True, capture_output=True)
        with tempfile.TemporaryFile() as log:
            api = subprocess.Popen(
                [api_bin, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
            )
            try:
                deadline = time.monotonic() + 30
                while not port_open(port):
                    if api.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise SystemExit(f"API did not start:\n{log.read().decode()[-2000:]}")
                    time.sleep(0.1)
                base = f"http://127.0.0.1:{port}"
                clients = args.concurrency
                print(f"POST /messages: {clients} clients for {args.seconds:.0f} s", flush=True)
                ok, errors, latencies, cpu_used = asyncio.run(
                    load(base, args.seconds, args.concurrency, api.pid)
                )
                rate = ok / args.seconds
                cpu_per_msg = cpu_used / max(1, ok + errors)
                print(f"  accepted: {ok} ({rate:.0f} msg/s), non-202: {errors}")
                print(
                    f"  latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                    f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
                    f"mean {statistics.fmean(latencies) * 1000:.1f} ms"
                )
                print(
                    f"  API CPU per accepted message: {cpu_per_msg * 1000:.2f} ms "
                    f"→ about {1 / cpu_per_msg:,.0f} msg/s per fully used API core; "
                    f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
                )
                cpu_before = cpu_seconds(api.pid)
                trivial = asyncio.run(baseline(base, 5, args.concurrency))
                cpu_trivial = (cpu_seconds(api.pid) - cpu_before) / max(1, trivial)
                print(
                    f"GET /healthz baseline: {trivial / 5:.0f} req/s, "
                    f"API CPU {cpu_trivial * 1000:.2f} ms/req; POST/trivial throughput ratio "
                    f"{rate / (trivial / 5):.2f}, CPU ratio {cpu_trivial / cpu_per_msg:.2f}"
                )
                print(f"idle WebSockets: opening {args.sockets} ...", flush=True)
                _count, per_socket = asyncio.run(idle_sockets(base, api.pid, args.sockets))
                print(
                    f"  {per_socket / 1024:.1f} KiB of API RSS per idle socket → "
                    f"{GIB / per_socket:,.0f} sockets per GiB"
                )
            finally:
                api.terminate()
                api.wait(timeout=10)


if __name__ == "__main__":
    main()
