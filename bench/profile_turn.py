"""Where an idle turn's time goes: a timeline of one citizen turn across every process.

Starts the local stack (bench/bench_e2e.py's) with PostgreSQL logging every statement with its
time and Redis MONITOR recording every command, sends turns one at a time, and lines up on one
clock (wall time, microseconds):
  - the client: POST sent, 202 received, reply received on the WebSocket;
  - every Redis command, attributed to the process that sent it (API, worker, Rasa);
  - every PostgreSQL statement, attributed the same way (through pg_stat_activity's client port).
It prints the timeline of the slowest-to-median turns, the median of each segment of the path,
the round trips per component per turn and the CPU each component spent per turn. With
`--py-spy`, it also samples each Python process (wall-clock, idle included) during the turns.

Usage: .venv/bin/python bench/profile_turn.py [--turns 30] [--intent saudacao] [--py-spy]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import shutil
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from assistente_testbed.assistant_stack import AssistantStack
from assistente_testbed.loadgen import DEFAULT_MIX, LoadGenerator, Turn
from assistente_testbed.paths import state_dir
from assistente_testbed.procstat import group_cpu_seconds

MONITOR_LINE = re.compile(r'^(\d+\.\d+) \[(\d+) [\d.]+:(\d+)\] "(\w+)"(.*)$')
PG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[(\d+)\] LOG:  duration: ([\d.]+) ms  (.*)$"
)


@dataclass
class Event:
    at: float  # unix time, seconds
    who: str  # component
    what: str  # e.g. "redis XADD assistente:{inbound-0}" or "pg 0.05ms execute ..."


def socket_owners(port: int) -> dict[int, int]:
    """Local port → pid, for every TCP client connected to `port` on 127.0.0.1."""
    out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout
    owners = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 6 or not fields[4].endswith(f":{port}"):
            continue
        pid = re.search(r"pid=(\d+)", line)
        if pid:
            owners[int(fields[3].rsplit(":", 1)[1])] = int(pid.group(1))
    return owners


def component_of(pid: int, groups: dict[str, int]) -> str:
    """The component a pid belongs to: its own group leader, or an ancestor's."""
    current = pid
    for _ in range(20):
        for name, leader in groups.items():
            if current == leader:
                return name
        try:
            stat = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return f"pid {pid}"
        pgid, ppid = int(stat[2]), int(stat[1])
        for name, leader in groups.items():
            if pgid == leader:
                return name
        if ppid <= 1:
            break
        current = ppid
    return f"pid {pid}"


def redis_events(path: Path, owners: dict[int, str]) -> list[Event]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        match = MONITOR_LINE.match(line)
        if not match:
            continue
        at, db, port, command, rest = match.groups()
        key = rest.split('" "')[0].strip(' "')[:60] if rest else ""
        who = owners.get(int(port), f"port {port}")
        events.append(Event(float(at), who, f"redis[{db}] {command} {key}".rstrip()))
    return events


def pg_events(path: Path, backends: dict[int, str]) -> list[Event]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        match = PG_LINE.match(line)
        if not match:
            continue
        stamp, pid, duration, statement = match.groups()
        at = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC)
        who = backends.get(int(pid), f"backend {pid}")
        text = re.sub(r"\s+", " ", statement)[:90]
        events.append(Event(at.timestamp(), who, f"pg {float(duration):.2f}ms {text}"))
    return events


def pg_backends(stack: AssistantStack, groups: dict[str, int]) -> dict[int, str]:
    """PostgreSQL backend pid → the component holding that connection."""
    rows = stack.postgres.execute(
        "SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL"
    )
    owners = socket_owners(stack.postgres.port)
    backends = {}
    for row in rows.splitlines():
        backend, client_port = (int(x) for x in row.split("|"))
        if client_port in owners:
            backends[backend] = component_of(owners[client_port], groups)
    return backends


def timeline(turn: Turn, events: list[Event]) -> list[tuple[float, str, str]]:
    """(ms since the POST, component, event) within the turn, client events included."""
    assert turn.replied_at is not None
    assert turn.accepted_at is not None
    start = turn.sent_unix
    accepted = start + (turn.accepted_at - turn.sent_at)
    replied = start + (turn.replied_at - turn.sent_at)
    rows = [(0.0, "client", "POST sent"), (1000 * (accepted - start), "client", "202 received"),
            (1000 * (replied - start), "client", "reply on the WebSocket")]  # fmt: skip
    rows += [
        (1000 * (e.at - start), e.who, e.what)
        for e in events
        if start - 0.001 <= e.at <= replied + 0.001
    ]
    return sorted(rows)


def first(rows: list[tuple[float, str, str]], who: str, contains: str, after: float = -1) -> float:
    for at, owner, what in rows:
        if owner == who and contains in what and at > after:
            return at
    return float("nan")


def last(rows: list[tuple[float, str, str]], who: str, contains: str) -> float:
    found = [at for at, owner, what in rows if owner == who and contains in what]
    return found[-1] if found else float("nan")


def segments(rows: list[tuple[float, str, str]]) -> dict[str, float]:
    """Instants of the path, then the segments between them (ms). Web replies are published by
    the worker right after it stores them (escalations go through the outbound stream)."""
    api_xadd = first(rows, "api", "XADD")
    worker_lock = first(rows, "worker", "SET", after=api_xadd)
    rasa_first = first(rows, "rasa", "redis[1]", after=worker_lock)
    rasa_last = last(rows, "rasa", "redis[1]")
    publish = first(rows, "worker", "PUBLISH", after=rasa_last)
    ws = first(rows, "client", "reply on the WebSocket")
    accepted = first(rows, "client", "202 received")
    return {
        "POST → API XADD (API: auth, rate limit, INSERT + commit)": api_xadd,
        "API XADD → 202 at the client": accepted - api_xadd,
        "API XADD → worker takes the conversation lock (stream wake-up)": worker_lock - api_xadd,
        "worker lock → Rasa's first lock op (worker read + HTTP to Rasa)": rasa_first - worker_lock,
        "Rasa: first → last lock op (NLU, tracker, actions)": rasa_last - rasa_first,
        "Rasa last lock op → PUBLISH (reply, store turn + commit)": publish - rasa_last,
        "PUBLISH → reply on the WebSocket (hub, socket, client)": ws - publish,
        "total": ws,
    }


async def run_turns(stack: AssistantStack, count: int, intent_name: str | None) -> list[Turn]:
    assert stack.app is not None
    mix = [i for i in DEFAULT_MIX if intent_name in (None, i.name)]
    async with LoadGenerator(stack.app.url, mix=mix, turns_per_citizen=5) as load:
        await load.sequential(5, pause_s=0.05)  # warm-up
        return (await load.sequential(count, pause_s=0.4)).turns


def py_spy(groups: dict[str, int], seconds: float, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("py-spy is not installed (uv sync installs it with the dev group)")
    procs = []
    for name in ("api", "worker", "rasa", "rasa-actions"):
        if name in groups:
            procs.append(subprocess.Popen(
                [spy, "record", "--pid", str(groups[name]), "--idle", "--rate", "250",
                 "--duration", str(int(seconds)), "--format", "raw",
                 "--output", str(out_dir / f"py-spy-{name}.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
    return procs


def top_frames(path: Path, limit: int = 12) -> list[tuple[str, float]]:
    """Share of samples in which each function (file:function) is on the stack."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = {re.sub(r" \(.*?/site-packages/|\(|\)", " ", f).split(":")[0].strip()
                  for f in stack.split(";")}  # fmt: skip
        for frame in frames:
            inclusive[frame] += count
    return [(frame, 100 * n / total) for frame, n in inclusive.most_common(limit)] if total else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--intent", default=None, help="one intent of the mix (default: all)")
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument("--show", type=int, default=2, help="timelines to print")
    args = parser.parse_args()
    out_dir = state_dir() / "profile-turn"
    out_dir.mkdir(parents=True, exist_ok=True)
    pg_options = {
        "log_min_duration_statement": "0",
        "log_line_prefix": "%m [%p] ",
        "log_timezone": "UTC",
    }
    with AssistantStack(postgres_options=pg_options, log_dir=out_dir) as stack:
        groups = stack.process_groups()
        monitor_path = out_dir / "redis-monitor.txt"
        with monitor_path.open("wb") as monitor_out:
            monitor = subprocess.Popen(
                ["redis-cli", "-p", str(stack.redis.port), "MONITOR"], stdout=monitor_out
            )
            spies = py_spy(groups, args.turns * 0.7 + 10, out_dir) if args.py_spy else []
            cpu_before = {name: group_cpu_seconds(pgid) for name, pgid in groups.items()}
            turns = asyncio.run(run_turns(stack, args.turns, args.intent))
            cpu = {n: group_cpu_seconds(p) - cpu_before[n] for n, p in groups.items()}
            for spy in spies:
                spy.wait(timeout=120)
            monitor.terminate()
            monitor.wait()
        redis_owners = {
            port: component_of(pid, groups) for port, pid in socket_owners(stack.redis.port).items()
        }
        events = redis_events(monitor_path, redis_owners)
        events += pg_events(stack.postgres.log_path, pg_backends(stack, groups))

    answered = [t for t in turns if t.replied_at is not None]
    rows_per_turn = [timeline(t, events) for t in answered]
    by_total = sorted(range(len(rows_per_turn)), key=lambda i: segments(rows_per_turn[i])["total"])
    for index in by_total[len(by_total) // 2 : len(by_total) // 2 + args.show]:
        turn = answered[index]
        print(f"\n--- timeline of a median turn ({turn.intent.name}), ms since the POST ---")
        for at, who, what in rows_per_turn[index]:
            print(f"{at:8.2f}  {who:12} {what}")

    print(f"\nMedian of each segment over {len(answered)} turns (ms):")
    per_segment: dict[str, list[float]] = defaultdict(list)
    for rows in rows_per_turn:
        for name, value in segments(rows).items():
            if value == value:  # not NaN
                per_segment[name].append(value)
    for name, values in per_segment.items():
        print(f"  {statistics.median(values):7.1f}  {name}")

    print("\nRound trips per turn (median) and CPU per turn, by component:")
    trips: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for rows in rows_per_turn:
        counts: Counter[tuple[str, str]] = Counter(
            (who, what.split(" ")[0].split("[")[0]) for _, who, what in rows if who != "client"
        )
        for who in groups:
            for kind in ("redis", "pg"):
                trips[who][kind].append(counts.get((who, kind), 0))
    for who in groups:
        redis_n = statistics.median(trips[who]["redis"]) if trips[who]["redis"] else 0
        pg_n = statistics.median(trips[who]["pg"]) if trips[who]["pg"] else 0
        print(f"  {who:14} redis {redis_n:4.0f}  postgres {pg_n:4.0f}  "
              f"CPU {1000 * cpu.get(who, 0) / max(1, len(turns)):6.1f} ms")  # fmt: skip
    if args.py_spy:
        for name in ("api", "worker", "rasa", "rasa-actions"):
            path = out_dir / f"py-spy-{name}.txt"
            if path.exists():
                print(f"\npy-spy, {name}: share of wall-clock samples with each function on stack")
                for frame, share in top_frames(path):
                    print(f"  {share:5.1f}%  {frame}")
    print(f"\nraw data in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
