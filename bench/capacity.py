"""The capacity model: cores, memory, replicas, HPA bounds, PDBs, PostgreSQL and Redis sizes for
100k, 1M and 5M registered users, computed from the figures `bench/bench_e2e.py` measured.

Inputs, each printed with its source:
- demand per 1M users: the "High" column of the project's peak arithmetic
  (shared/notes/perf_anchors.md §6.2): 125 citizen turns/s at the design peak (burst included),
  45,000 concurrent WebSockets, 750,000 citizen turns a day;
- CPU per turn of each component and its memory: the benchmark's JSON (a sweep phase at a rate
  the stack keeps up with, `--rate`), on the 2-core development machine;
- storage per turn: the same run (`storage`);
- memory per idle WebSocket: `make bench-app` (docs/app.md).

Usage: .venv/bin/python bench/capacity.py [.local/bench-e2e.json] [--rate 8] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TURNS_PER_S_PER_MILLION = 125.0  # perf_anchors §6.2, High: 250 msg/s, half of them turns
SOCKETS_PER_MILLION = 45_000  # perf_anchors §6.2, High, with the burst factor
TURNS_PER_DAY_PER_MILLION = 750_000  # perf_anchors §6.2, High: 1.5M messages/day, half turns
HEADROOM = 2.0  # build for 2x the design peak (perf_anchors §6.3)
TARGET_UTILISATION = 0.6  # of each pod's CPU at the design peak (see the sweep in the doc)
DB_UTILISATION = 0.5
SOCKET_KIB = 38.5  # API RSS per idle WebSocket (make bench-app, docs/app.md)
RETENTION_DAYS = 180  # ASSISTENTE_RETENTION_DAYS default (LGPD retention)
COMMITS_PER_TURN = 3  # API accept, worker store, Rasa tracker save (the turn's profile)
USERS = (100_000, 1_000_000, 5_000_000)
SOCKETS_PER_API_POD = 20_000  # a ceiling per uvicorn process (file descriptors, one event loop)
GIB_PER_VCPU = 4  # general-purpose instance shapes (AWS m-class, Azure D-series, GCP n2-standard)


@dataclass(frozen=True)
class Component:
    name: str
    measured_as: tuple[str, ...]  # process groups of the benchmark that make it up
    pod_cpu: float  # cores requested per pod
    why_pod: str


COMPONENTS = (
    Component("API", ("api",), 1.0, "uvicorn, one process per pod"),
    Component("worker", ("worker",), 1.0, "one asyncio process per pod"),
    Component("Rasa", ("rasa",), 1.0, "Rasa serves from one process: one core is its ceiling"),
    Component("action server", ("rasa-actions",), 0.5, "mostly waits on DataJud"),
)


def load_run(path: Path, rate: float) -> dict[str, Any]:
    data = json.loads(path.read_text())
    runs = data.get("runs", data)
    run = runs["this checkout"][-1] if isinstance(runs, dict) else runs
    rows = [row for row in run["sweep"] if row["offered_per_s"] == rate]
    if not rows:
        raise SystemExit(f"no sweep phase at {rate} turns/s in {path}")
    return {"row": rows[0], "rss_mib": run["rss_mib"], "storage": run.get("storage", {}),
            "knee": run["knee"], "sweep": run["sweep"]}  # fmt: skip


def ceil_to(value: float, step: float) -> float:
    return math.ceil(value / step) * step


def instance_vcpus(cores: float) -> int:
    """The smallest instance size (2, 4, 8, 16, ... vCPU) with `cores`."""
    size = 2
    while size < cores:
        size *= 2
    return size


def users_label(users: int) -> str:
    return f"{users / 1e6:g}M users" if users >= 1_000_000 else f"{users // 1000}k users"


def model(run: dict[str, Any]) -> list[str]:
    cpu = run["row"]["cpu_ms_per_turn"]
    out = [
        f"Measured (bench_e2e, sweep phase at {run['row']['offered_per_s']:g} turns/s, "
        f"p95 {run['row']['p95_ms']} ms, load average {run['row']['load_average']:.1f}):",
    ]
    for component in COMPONENTS:
        ms = sum(cpu.get(name, 0.0) for name in component.measured_as)
        per_core = 1000 / ms if ms else math.inf
        rss = sum(run["rss_mib"].get(name, 0.0) for name in component.measured_as)
        out.append(f"  {component.name:14} {ms:6.2f} ms CPU/turn → {per_core:6.0f} turns/s per "
                   f"core; RSS {rss:.0f} MiB")  # fmt: skip
    for name in ("postgres", "redis"):
        out.append(f"  {name:14} {cpu.get(name, 0.0):6.2f} ms CPU/turn")
    storage = run["storage"]
    per_turn_bytes = storage.get("app_bytes", 0) + storage.get("tracker_bytes", 0)
    out.append(f"  storage        {per_turn_bytes} B/turn (app {storage.get('app_bytes')} B, "
               f"Rasa tracker {storage.get('tracker_bytes')} B, indexes included)")  # fmt: skip
    out.append("")
    header = "| | " + " | ".join(users_label(u) for u in USERS) + " |"
    out += [header, "|---|" + "---|" * len(USERS)]

    def line(label: str, values: list[str]) -> None:
        out.append(f"| {label} | " + " | ".join(values) + " |")

    peaks = [TURNS_PER_S_PER_MILLION * u / 1e6 for u in USERS]
    line("design peak, turns/s", [f"{p:g}" for p in peaks])
    line("concurrent WebSockets", [f"{SOCKETS_PER_MILLION * u / 1e6:,.0f}" for u in USERS])
    sockets = [SOCKETS_PER_MILLION * u / 1e6 for u in USERS]
    for component in COMPONENTS:
        ms = sum(cpu.get(name, 0.0) for name in component.measured_as)
        rss = sum(run["rss_mib"].get(name, 0.0) for name in component.measured_as)
        cores = [p * ms / 1000 for p in peaks]
        replicas = [max(2, math.ceil(c / (component.pod_cpu * TARGET_UTILISATION))) for c in cores]
        if component.name == "API":  # the sockets need room too
            replicas = [max(r, math.ceil(n / SOCKETS_PER_API_POD)) for r, n in
                        zip(replicas, sockets, strict=True)]  # fmt: skip
            memory = [ceil_to(rss * 1.5 + n / r * SOCKET_KIB / 1024, 128)
                      for n, r in zip(sockets, replicas, strict=True)]  # fmt: skip
        else:
            memory = [ceil_to(rss * 1.5, 128)] * len(USERS)
        hpa_min = [max(2, math.ceil(r / 2)) for r in replicas]
        hpa_max = [max(lo, math.ceil(r * HEADROOM)) for r, lo in
                   zip(replicas, hpa_min, strict=True)]  # fmt: skip
        line(f"{component.name}: cores at peak", [f"{c:.2f}" for c in cores])
        line(f"{component.name}: pods at peak ({component.pod_cpu:g} CPU each)",
             [str(r) for r in replicas])  # fmt: skip
        line(f"{component.name}: memory per pod", [f"{m:.0f} MiB" for m in memory])
        line(f"{component.name}: HPA min / max", [f"{lo} / {hi}" for lo, hi in
                                                  zip(hpa_min, hpa_max, strict=True)])  # fmt: skip
    line("API: WebSocket memory, all pods", [f"{n * SOCKET_KIB / 2**20:.2f} GiB" for n in sockets])
    line("PDB (every component with ≥ 2 pods)", ["maxUnavailable: 1"] * len(USERS))
    pg_need = [HEADROOM * p * cpu.get("postgres", 0.0) / 1000 / DB_UTILISATION for p in peaks]
    pg_vcpu = [instance_vcpus(c) for c in pg_need]
    line("PostgreSQL: cores needed at 2x peak, ≤ 50 % busy", [f"{c:.1f}" for c in pg_need])
    line("PostgreSQL: instance (primary; the synchronous replica the same)",
         [f"{v} vCPU / {GIB_PER_VCPU * v} GiB" for v in pg_vcpu])  # fmt: skip
    line("PostgreSQL: commits/s at peak", [f"{COMMITS_PER_TURN * p:,.0f}" for p in peaks])
    day_bytes = [per_turn_bytes * TURNS_PER_DAY_PER_MILLION * u / 1e6 for u in USERS]
    line(f"PostgreSQL: data for {RETENTION_DAYS} days of retention",
         [f"{b * RETENTION_DAYS / 2**30:,.0f} GiB" for b in day_bytes])  # fmt: skip
    redis_cores = [HEADROOM * p * cpu.get("redis", 0.0) / 1000 for p in peaks]
    line("Redis: cores at 2x peak (one primary does all the work)",
         [f"{c:.2f}" for c in redis_cores])  # fmt: skip
    # Redis runs commands on one core: past ~0.7 core at 2x peak, give Rasa's lock store (half
    # of the commands of a turn) a Sentinel set of its own.
    sets = [1 if c <= 0.7 else 2 for c in redis_cores]
    line("Redis: Sentinel sets (primary + 2 replicas + 3 Sentinels each, 1 vCPU / 1 GiB nodes)",
         ["1 (app and Rasa locks)" if n == 1 else "2 (app; Rasa locks)" for n in sets])  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", type=Path, default=Path(".local/bench-e2e.json"))
    parser.add_argument("--rate", type=float, default=8.0)
    args = parser.parse_args()
    print("\n".join(model(load_run(args.json, args.rate))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
