"""Benchmark of the assistant's Rasa side (run with Rasa's venv python; see docs/rasa.md).

Measures, each for a bounded time:
  1. NLU parse in-process (Agent.parse_message): p50/p99 latency and parses/s of one process;
  2. NLU parse over HTTP (POST /model/parse, one sequential client), the figure the baseline
     was measured with: 67 ms per parse for the default Rasa pipeline (DIET + TED) here;
  3. a full Rasa turn over the REST channel (POST /webhooks/rest/webhook: NLU + dialogue +
     action server + knowledge base), sequential: p50/p99 (baseline 87 ms);
  4. with --compare-default, the in-process parse of Rasa's default pipeline trained on the same
     data, so the ratio is also measured on this machine rather than taken from the note.

Starts its own Rasa server and action server (hack/rasa-run.sh, in-memory stores) on free ports
and stops them at the end.

Usage: <rasa-venv>/bin/python rasa/bench/bench_nlu.py [--seconds 10] [--compare-default]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# No telemetry calls, quiet TensorFlow/SQLAlchemy: set before Rasa is imported.
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The model references the project's custom NLU component (rasa/components/).
sys.path.insert(0, str(REPO / "rasa"))
BASELINE_PARSE_MS = 67.0
BASELINE_TURN_MS = 87.0

MESSAGES = [
    "oi, bom dia",
    "quero saber do processo 0000832-35.2018.4.01.3202",
    "como tiro certidao negativa criminal",
    "o que significa concluso pra despacho",
    "nao consigo entrar no pje, esqueci a senha",
    "quero falar com um atendente",
    "da pra processar uma empresa sem advogado?",
    "qual a previsao do tempo pra amanha",
    "valeu, obrigado",
    "como funciona o balcao virtual",
]
# Turns that stay inside Rasa + action server + knowledge base (no DataJud call, no escalation).
TURN_MESSAGES = [
    "oi, bom dia",
    "como tiro certidao negativa criminal",
    "o que significa concluso pra despacho",
    "valeu, obrigado",
]

DEFAULT_PIPELINE = """\
recipe: default.v1
language: pt
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 100
  - name: EntitySynonymMapper
  - name: ResponseSelector
    epochs: 100
  - name: FallbackClassifier
    threshold: 0.3
    ambiguity_threshold: 0.1
policies: []
"""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(name: str, samples_ms: list[float], elapsed_s: float) -> dict[str, Any]:
    result = {
        "name": name,
        "count": len(samples_ms),
        "p50_ms": round(statistics.median(samples_ms), 2),
        "p99_ms": round(percentile(samples_ms, 0.99), 2),
        "per_second": round(len(samples_ms) / elapsed_s, 1),
    }
    print(
        f"{name:38} n={result['count']:5}  p50={result['p50_ms']:8.2f} ms  "
        f"p99={result['p99_ms']:8.2f} ms  {result['per_second']:8.1f}/s",
        flush=True,
    )
    return result


async def timed_loop(call: Callable[[str], Awaitable[Any]], messages: list[str],
                     seconds: float) -> tuple[list[float], float]:  # fmt: skip
    for message in messages:  # warm-up: lazy imports, caches
        await call(message)
    samples: list[float] = []
    start = time.perf_counter()
    index = 0
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        await call(messages[index % len(messages)])
        samples.append((time.perf_counter() - began) * 1000)
        index += 1
    return samples, time.perf_counter() - start


def timed_loop_sync(
    call: Callable[[str], Any], messages: list[str], seconds: float
) -> tuple[list[float], float]:
    for message in messages:
        call(message)
    samples: list[float] = []
    start = time.perf_counter()
    index = 0
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        call(messages[index % len(messages)])
        samples.append((time.perf_counter() - began) * 1000)
        index += 1
    return samples, time.perf_counter() - start


def hack(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(REPO / "hack" / script), *args], capture_output=True, text=True,
                            check=True, env=env)  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post_json(url: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),  # noqa: S310
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local URL)
        return json.loads(response.read())


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (local URL)
                return time.perf_counter() - start
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


def train_default_pipeline(data_nlu: Path, out: Path) -> Path:
    digest = hashlib.sha256(DEFAULT_PIPELINE.encode())
    for path in sorted(data_nlu.glob("*.yml")):
        digest.update(path.read_bytes())
    name = f"default-pipeline-{digest.hexdigest()[:12]}"
    model = out / f"{name}.tar.gz"
    if model.exists():
        return model
    config = out / "default-pipeline-config.yml"
    config.write_text(DEFAULT_PIPELINE)
    print("training Rasa's default pipeline (DIET) on the same data for the comparison...",
          flush=True)  # fmt: skip
    rasa_cli = str(Path(sys.executable).parent / "rasa")
    # Its own training cache, outside the repository (Rasa defaults to ./.rasa/cache).
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(out.parent / "rasa-train-cache" / name)}
    subprocess.run([rasa_cli, "train", "nlu", "--config", str(config), "--nlu", str(data_nlu),
                    "--out", str(out), "--fixed-model-name", name],
                   check=True, capture_output=True, env=env)  # fmt: skip
    return model


async def bench_in_process(model: Path, name: str, seconds: float) -> dict[str, Any]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # per-parse debug lines would be measured too

    agent = Agent.load(str(model))
    samples, elapsed = await timed_loop(agent.parse_message, MESSAGES, seconds)
    return summary(name, samples, elapsed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--compare-default", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    started = time.perf_counter()
    model = Path(hack("rasa-train.sh"))
    results: dict[str, Any] = {"model": model.name}
    results["parse_in_process"] = asyncio.run(
        bench_in_process(model, "NLU parse, in process", args.seconds)
    )

    env = {**os.environ, "RASA_PORT": str(free_port()), "RASA_ACTIONS_PORT": str(free_port()),
           "RASA_MODEL": str(model), "DATAJUD_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip
    for name in ("RASA_TRACKER_DB_URL", "RASA_LOCK_REDIS_URL", "RASA_TRACKER_DB_HOST"):
        env.pop(name, None)
    logs = REPO / ".local"
    logs.mkdir(exist_ok=True)
    runner = str(REPO / "hack" / "rasa-run.sh")
    with (logs / "bench-actions.log").open("wb") as actions_log, \
         (logs / "bench-rasa.log").open("wb") as rasa_log:  # fmt: skip
        actions = subprocess.Popen([runner, "actions"], env=env, stdout=actions_log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        server = subprocess.Popen([runner, "server"], env=env, stdout=rasa_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{env['RASA_PORT']}"
            wait_http(f"http://127.0.0.1:{env['RASA_ACTIONS_PORT']}/health", actions)
            startup = wait_http(f"{base}/status", server)
            results["server_ready_s"] = round(startup, 1)
            print(f"{'Rasa server start until /status':38} {startup:.1f} s", flush=True)

            def parse_http(text: str) -> Any:
                return post_json(f"{base}/model/parse", {"text": text})

            samples, elapsed = timed_loop_sync(parse_http, MESSAGES, args.seconds)
            results["parse_http"] = summary("NLU parse, HTTP /model/parse", samples, elapsed)

            counter = iter(range(10**9))

            def turn(text: str) -> Any:
                # A fresh conversation every 4 turns keeps the tracker short, as in real use.
                sender = f"bench-{next(counter) // len(TURN_MESSAGES)}"
                return post_json(
                    f"{base}/webhooks/rest/webhook", {"sender": sender, "message": text}
                )

            samples, elapsed = timed_loop_sync(turn, TURN_MESSAGES, args.seconds)
            results["turn_http"] = summary("Full Rasa turn, REST webhook", samples, elapsed)
        finally:
            for process in (server, actions):
                os.killpg(process.pid, 15)
                process.wait(timeout=30)

    if args.compare_default:
        out = Path(hack("rasa-setup.sh", "--path")).parent / "rasa-models"
        default_model = train_default_pipeline(REPO / "rasa" / "data" / "nlu", out)
        results["default_parse_in_process"] = asyncio.run(
            bench_in_process(default_model, "default pipeline (DIET), in process", args.seconds)
        )
        ratio = (
            results["default_parse_in_process"]["p50_ms"] / results["parse_in_process"]["p50_ms"]
        )
        results["measured_speedup_in_process"] = round(ratio, 1)
        print(f"default pipeline / ours, in-process p50: {ratio:.1f}x", flush=True)

    parse_ratio = BASELINE_PARSE_MS / results["parse_http"]["p50_ms"]
    turn_ratio = BASELINE_TURN_MS / results["turn_http"]["p50_ms"]
    results["speedup_vs_67ms_parse"] = round(parse_ratio, 1)
    results["speedup_vs_87ms_turn"] = round(turn_ratio, 1)
    print(
        f"HTTP parse vs the default pipeline's {BASELINE_PARSE_MS:.0f} ms: "
        f"{parse_ratio:.1f}x faster"
    )
    print(
        f"REST turn vs the default pipeline's {BASELINE_TURN_MS:.0f} ms: {turn_ratio:.1f}x faster"
    )
    print(f"benchmark took {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
