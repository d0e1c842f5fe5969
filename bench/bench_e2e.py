"""End-to-end load benchmark: simulated citizens on WebSockets against the whole local stack.

Starts everything on this machine, each on free ports: PostgreSQL (fsync on), Redis (AOF), the
DataJud fake, Rasa and its action server (SQL tracker store, Redis lock store), the API and the
worker. The load generator (assistente_testbed.loadgen) runs in this process, on the same cores.

1. Idle: turns one at a time, every intent of the mix in turn: the latency of one turn from the
   POST until its reply arrives on the WebSocket, per intent.
2. Sweep: open-loop Poisson arrivals at rising rates (a fixed intent mix), each phase for
   `--phase-s` seconds; per rate, answered turns/s, p50/p95/p99 and the CPU each component used.
   The sweep stops two rates past the knee.
3. The knee: the highest offered rate the stack keeps up with (answered ≥ 97 % of offered, p95 ≤
   1 s), and the highest rate that meets the p95 ≤ 300 ms goal.
4. With --failovers: the chaos scenarios of tests/ha (processes killed, Redis primary killed,
   PostgreSQL primary restarted, replica promoted) under load, with the count of messages sent,
   accepted, answered, lost and answered twice.

Usage: .venv/bin/python bench/bench_e2e.py [--rates 2,4,8,12,16,20,24] [--phase-s 20]
       [--idle-turns 35] [--json .local/bench-e2e.json] [--env ASSISTENTE_X=Y ...]
       [--baseline OTHER_CHECKOUT --repeat 2] [--failovers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistente_testbed.app_processes import AppProcesses
from assistente_testbed.assistant_stack import AssistantStack
from assistente_testbed.chaos import ALL_FAULTS, run_scenario
from assistente_testbed.loadgen import LoadGenerator, PhaseResult, percentile
from assistente_testbed.paths import state_dir
from assistente_testbed.procstat import group_cpu_seconds, group_rss_bytes, self_cpu_seconds

KEEP_UP_RATIO = 0.97
KEEP_UP_P95_MS = 1000.0
GOAL_P95_MS = 300.0
GOAL_RATE = 16.0
COMPONENTS = ("api", "worker", "rasa", "rasa-actions", "postgres", "redis", "loadgen")


class CpuMeter:
    """CPU seconds used by each component between `start()` and `stop()`."""

    def __init__(self, groups: Callable[[], dict[str, int]]) -> None:
        self.groups = groups
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        found = {name: group_cpu_seconds(pgid) for name, pgid in self.groups().items()}
        found["loadgen"] = self_cpu_seconds()
        return found

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        after = self._now()
        return {name: after[name] - self._before.get(name, 0.0) for name in after}


def format_row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0f}"


def print_idle(result: PhaseResult) -> dict[str, Any]:
    print("\nIdle turns (one at a time), POST → reply on the WebSocket, ms:")
    widths = [20, 5, 7, 7, 7]
    print(format_row(["intent", "n", "p50", "p95", "max"], widths))
    figures: dict[str, Any] = {}
    for name, values in sorted(result.by_intent().items()):
        print(format_row([name, str(len(values)), ms(percentile(values, 0.5)),
                          ms(percentile(values, 0.95)), ms(max(values))], widths))  # fmt: skip
        figures[name] = {"n": len(values), "p50_ms": round(percentile(values, 0.5), 1)}
    all_ms = result.latencies_ms
    print(format_row(["all", str(len(all_ms)), ms(percentile(all_ms, 0.5)),
                      ms(percentile(all_ms, 0.95)), ms(max(all_ms, default=math.nan))],
                     widths))  # fmt: skip
    figures["all"] = result.summary()
    return figures


def keeps_up(summary: dict[str, Any]) -> bool:
    p95 = summary["p95_ms"]
    return (
        summary["answered"] >= KEEP_UP_RATIO * summary["sent"]
        and p95 is not None
        and p95 <= KEEP_UP_P95_MS
    )


async def sweep(
    load: LoadGenerator, rates: list[float], phase_s: float, meter: CpuMeter
) -> list[dict[str, Any]]:
    print(f"\nOpen-loop sweep, {phase_s:.0f} s per rate (CPU in cores used on average):")
    widths = [7, 8, 6, 6, 6, 6, 6, *[max(6, len(name)) for name in COMPONENTS]]
    header = ["offered", "answered", "sent", "p50", "p95", "p99", "retry", *COMPONENTS]
    print(format_row(header, widths))
    rows: list[dict[str, Any]] = []
    failures_in_a_row = 0
    for rate in rates:
        meter.start()
        result = await load.run(rate, phase_s, drain_s=30)
        cpu = meter.stop()
        summary = result.summary()
        # CPU over the offered window: the cores this rate needs (the drain adds little work).
        summary["cores"] = {name: round(cpu.get(name, 0.0) / phase_s, 3) for name in COMPONENTS}
        summary["cpu_ms_per_turn"] = {
            name: round(1000 * cpu.get(name, 0.0) / max(1, summary["answered"]), 2)
            for name in COMPONENTS
        }
        summary["load_average"] = os.getloadavg()[0]
        summary["keeps_up"] = keeps_up(summary)
        rows.append(summary)
        print(format_row(
            [f"{rate:g}/s", f"{summary['answered_per_s']:.1f}/s", str(summary["sent"]),
             ms(summary["p50_ms"]), ms(summary["p95_ms"]), ms(summary["p99_ms"]),
             str(summary["retried_posts"]),
             *[f"{summary['cores'][name]:.2f}" for name in COMPONENTS]],
            widths,
        ), flush=True)  # fmt: skip
        failures_in_a_row = 0 if summary["keeps_up"] else failures_in_a_row + 1
        if failures_in_a_row >= 2:
            break
    return rows


def knee(rows: list[dict[str, Any]]) -> dict[str, Any]:
    kept = [row for row in rows if row["keeps_up"]]
    goal = [row for row in kept if row["p95_ms"] is not None and row["p95_ms"] <= GOAL_P95_MS]
    at_goal_rate = [row for row in rows if row["offered_per_s"] == GOAL_RATE]
    return {
        "knee_turns_per_s": max((row["offered_per_s"] for row in kept), default=None),
        "max_rate_with_p95_under_300ms": max((row["offered_per_s"] for row in goal), default=None),
        "p95_ms_at_16_per_s": at_goal_rate[0]["p95_ms"] if at_goal_rate else None,
    }


async def measure(args: argparse.Namespace, app: AppProcesses, meter: CpuMeter) -> dict[str, Any]:
    async with LoadGenerator(app.url, reply_timeout_s=60) as load:
        # Warm-up: first requests load lazy imports, prepared statements, Rasa's caches.
        await load.sequential(7, pause_s=0.05)
        idle = await load.sequential(args.idle_turns, pause_s=0.25)
        figures: dict[str, Any] = {"idle": print_idle(idle)}
        rates = [float(r) for r in args.rates.split(",")]
        figures["sweep"] = await sweep(load, rates, args.phase_s, meter)
        figures["post_errors"] = dict(load.post_errors)
    figures["knee"] = knee(figures["sweep"])
    k = figures["knee"]
    print(f"\nKnee: {k['knee_turns_per_s']} turns/s offered is the highest rate the stack keeps up "
          f"with (answered ≥ {KEEP_UP_RATIO:.0%}, p95 ≤ {KEEP_UP_P95_MS:.0f} ms).")  # fmt: skip
    print(f"Highest rate with p95 ≤ {GOAL_P95_MS:.0f} ms: {k['max_rate_with_p95_under_300ms']} "
          f"turns/s; p95 at {GOAL_RATE:g} turns/s: {ms(k['p95_ms_at_16_per_s'])} ms "
          f"(goal ≤ {GOAL_P95_MS:.0f}).")  # fmt: skip
    idle_all = figures["idle"]["all"]
    print(f"Idle turn p50 {ms(idle_all['p50_ms'])} ms (goal ≤ 50 ms).")
    return figures


def storage_per_turn(stack: AssistantStack, figures: dict[str, Any]) -> dict[str, Any]:
    """Bytes PostgreSQL holds per answered turn: the app's rows and Rasa's tracker events, with
    their indexes (for the capacity model)."""
    turns = figures["idle"]["all"]["answered"] + sum(row["answered"] for row in figures["sweep"])
    app = stack.postgres.execute(
        "SELECT pg_total_relation_size('messages') + pg_total_relation_size('conversations')",
        database="assistente",
    )
    tracker = stack.postgres.execute(
        "SELECT pg_total_relation_size('events')", database="rasa_tracker"
    )
    per_turn = {
        "app_bytes": round(int(app.strip()) / max(1, turns)),
        "tracker_bytes": round(int(tracker.strip()) / max(1, turns)),
        "turns": turns,
    }
    print(f"storage per answered turn: app {per_turn['app_bytes']} B, Rasa tracker "
          f"{per_turn['tracker_bytes']} B (over {turns} turns, indexes included)")  # fmt: skip
    return per_turn


def run_stack(args: argparse.Namespace, label: str, code: Path | None) -> dict[str, Any]:
    """Start the stack (of `code`, or this checkout), measure it, stop it."""
    extra = dict(item.split("=", 1) for item in args.env)
    print(f"\n===== {label}: starting PostgreSQL, Redis, the DataJud fake, Rasa + actions, "
          f"API + worker (load average {os.getloadavg()[0]:.1f}) =====", flush=True)  # fmt: skip
    started = time.perf_counter()
    with AssistantStack(
        fast_postgres=args.fast, app_env=extra, log_dir=state_dir() / "bench-e2e", code=code
    ) as stack:
        assert stack.app is not None
        print(f"stack ready in {time.perf_counter() - started:.0f} s; settings {extra or '-'}",
              flush=True)  # fmt: skip
        figures = asyncio.run(measure(args, stack.app, CpuMeter(stack.process_groups)))
        figures["rss_mib"] = {
            name: round(group_rss_bytes(pgid) / 2**20, 1)
            for name, pgid in stack.process_groups().items()
        }
        figures["storage"] = storage_per_turn(stack, figures)
        print("memory (RSS, MiB): " + ", ".join(f"{k} {v}" for k, v in figures["rss_mib"].items()))
    figures["settings"] = extra
    figures["load_average_end"] = os.getloadavg()
    return figures


def failovers() -> list[dict[str, Any]]:
    """The chaos scenarios of tests/ha on a highly available stack, as figures."""
    print("\n===== failovers under load: starting the HA stack (Redis primary + 2 replicas + "
          "3 Sentinels, PostgreSQL primary + synchronous replica) =====", flush=True)  # fmt: skip
    rows: list[dict[str, Any]] = []
    with AssistantStack(ha=True, log_dir=state_dir() / "bench-e2e-ha") as stack:
        for fault in ALL_FAULTS:
            result = asyncio.run(run_scenario(stack, fault))
            print(result.line(), flush=True)
            v = result.verification
            rows.append({"fault": fault.name, "what": result.what_happened, "sent": v.sent,
                         "accepted": v.accepted, "answered": v.answered,
                         "lost": len(v.unanswered), "answered_twice": len(v.duplicated),
                         "pushed_twice": v.duplicate_pushes,
                         "posts_retried": result.post_retries})  # fmt: skip
    lost = sum(row["lost"] for row in rows)
    twice = sum(row["answered_twice"] for row in rows)
    print(f"failovers: {len(rows)} scenarios, {sum(r['accepted'] for r in rows)} messages "
          f"accepted, {lost} lost, {twice} answered twice")  # fmt: skip
    return rows


def compare(runs: dict[str, list[dict[str, Any]]]) -> None:
    """One line per run: idle p50/p95, the knee, p95 at 16 turns/s, CPU per turn at 8 turns/s."""
    print("\nBefore / after (same machine, same run; load average at the end of each run):")
    widths = [16, 9, 9, 6, 8, 9, 8]
    print(format_row(["code", "idle p50", "idle p95", "knee", "p95@16", "CPU/turn", "load"],
                     widths))  # fmt: skip
    for label, results in runs.items():
        for figures in results:
            idle = figures["idle"]["all"]
            at8 = [r for r in figures["sweep"] if r["offered_per_s"] == 8.0]
            cpu = sum(at8[0]["cpu_ms_per_turn"].values()) - at8[0]["cpu_ms_per_turn"]["loadgen"] \
                if at8 else math.nan  # fmt: skip
            k = figures["knee"]
            load = figures["load_average_end"][0]
            print(format_row(
                [label, ms(idle["p50_ms"]), ms(idle["p95_ms"]), str(k["knee_turns_per_s"]),
                 ms(k["p95_ms_at_16_per_s"]), f"{cpu:.1f}", f"{load:.1f}"],
                widths,
            ))  # fmt: skip
    print("(idle p50/p95 and p95@16 in ms; knee in turns/s; CPU/turn = ms of CPU per answered "
          "turn at 8 turns/s, all components but the load generator)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="2,4,8,12,16,20,24,28,32")
    parser.add_argument("--phase-s", type=float, default=20.0)
    parser.add_argument("--idle-turns", type=int, default=35)
    parser.add_argument("--fast", action="store_true", help="PostgreSQL without fsync")
    parser.add_argument("--json", type=Path, default=state_dir() / "bench-e2e.json")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra setting for the API and the worker (repeatable)")  # fmt: skip
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also measure another checkout (with its own .venv), alternating",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds (with --baseline)")
    parser.add_argument(
        "--failovers",
        action="store_true",
        help="also run the chaos scenarios on the HA stack and print the counts",
    )
    parser.add_argument("--no-sweep", action="store_true", help="only the failovers")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"load average before start: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    targets: list[tuple[str, Path | None]] = [("this checkout", None)]
    if args.baseline:
        targets.insert(0, (f"baseline {args.baseline.name}", args.baseline.resolve()))
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in targets}
    for _round in range(0 if args.no_sweep else args.repeat if args.baseline else 1):
        for label, code in targets:
            runs[label].append(run_stack(args, label, code))
    if args.baseline:
        compare(runs)
    output: dict[str, Any] = {"runs": runs}
    if args.failovers:
        output["failovers"] = failovers()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, indent=2))
    print(f"figures in {args.json}; benchmark took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
