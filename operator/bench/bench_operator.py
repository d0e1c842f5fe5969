"""Operator benchmark (figures, never pass/fail).

Starts its own local control plane (kwok nodes), installs the CRD, runs the operator as a
process and measures:
  - time from creating one AssistenteDigital (the sample) to Ready=True;
  - time for 100 AssistenteDigitals in 100 namespaces to all become Ready;
  - reconcile passes per second while converging;
  - the operator's CPU time while converging, and its resident memory (RSS) once it holds
    100 objects.

Run: .venv/bin/python operator/bench/bench_operator.py [--count 100] [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from assistente_testbed.cluster import KubeCluster

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "operator/config/samples/assistentedigital.yaml"
LOG = REPO / ".local/operator-bench.log"
RESULT = REPO / ".local/operator-bench.json"
CRD = REPO / "operator/config/crd"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BenchCluster(KubeCluster):
    """The test bed's cluster with room for more Services than its default /24 range."""

    def _write_config(self) -> Path:
        path = super()._write_config()
        config = yaml.safe_load(path.read_text())
        config["componentsPatches"] = [
            {
                "name": "kube-apiserver",
                "extraArgs": [{"key": "service-cluster-ip-range", "value": "10.96.0.0/16"}],
            }
        ]
        path.write_text(yaml.safe_dump(config))
        return path


class Bench:
    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.cluster.kubectl(*args, input=stdin, timeout=300).stdout

    def start_operator(self, workers: int) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(CRD))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/assistentesdigitais.assistente.digital",
        )
        LOG.parent.mkdir(exist_ok=True)
        env = dict(os.environ, KUBECONFIG=str(self.cluster.kubeconfig))
        with LOG.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "assistente_operator",
                    "run",
                    "--workers",
                    str(workers),
                    "--resync-seconds",
                    "300",
                    "--liveness",
                    f"http://127.0.0.1:{self.port}/healthz",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while self.probe() is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"the operator did not start; see {LOG}")
            time.sleep(0.2)

    def stop_operator(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def probe(self) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except OSError:
            return None

    def passes(self) -> int:
        return int((self.probe() or {}).get("reconciler", {}).get("passes", 0))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the operator process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Resident memory now (VmRSS) or at its peak so far (VmHWM)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def ready_names(self) -> set[tuple[str, str]]:
        items = json.loads(self.kubectl("get", "assistentesdigitais", "-A", "-o", "json"))["items"]
        ready = set()
        for item in items:
            status = item.get("status", {})
            current = status.get("observedGeneration") == item["metadata"]["generation"]
            conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
            if current and conditions.get("Ready") == "True":
                ready.add((item["metadata"]["namespace"], item["metadata"]["name"]))
        return ready

    def wait_ready(self, wanted: set[tuple[str, str]], timeout: float) -> float:
        start = time.monotonic()
        last_report = start
        while True:
            ready = self.ready_names() & wanted
            now = time.monotonic()
            if ready == wanted:
                return now - start
            if now - start > timeout:
                raise SystemExit(f"only {len(ready)}/{len(wanted)} Ready after {timeout}s")
            if now - last_report > 10:
                counters = (self.probe() or {}).get("reconciler", {})
                log(
                    f"  {len(ready)}/{len(wanted)} Ready after {now - start:.0f}s "
                    f"(operator: {counters.get('applies', '?')} applies, "
                    f"{counters.get('passes', '?')} passes, {counters.get('queued', '?')} queued)"
                )
                last_report = now
            time.sleep(0.2)


def small_sample(name: str, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    small = {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"cpu": "100m", "memory": "64Mi"},
    }
    for component in ("api", "nlu", "actions", "worker"):
        body["spec"][component] = {"replicas": 1, "resources": small}
    body["spec"]["redis"]["inCluster"].update(replicas=1, sentinelQuorum=1, resources=small)
    return body


def namespace_doc(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def load_average() -> float:
    """The machine's 1-minute load average (other work on the machine skews every figure)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def run(bench: Bench, count: int) -> dict[str, float]:
    figures: dict[str, float] = {"machine_load_1m_at_start": load_average()}

    log("1) one sample AssistenteDigital: create -> Ready=True (3 runs)")
    times = []
    for run_index in range(3):
        ns = f"bench-one-{run_index}"
        body = yaml.safe_load(SAMPLE.read_text())
        body["metadata"] = {"name": "tjxx", "namespace": ns}
        bench.kubectl(
            "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all([namespace_doc(ns), body])
        )
        times.append(bench.wait_ready({(ns, "tjxx")}, timeout=120))
        log(f"  run {run_index + 1}: {times[-1]:.2f}s")
    figures["one_cr_ready_seconds_median"] = statistics.median(times)

    log(f"2) {count} AssistenteDigitals in {count} namespaces, created at once")
    documents: list[dict[str, Any]] = []
    wanted = set()
    for index in range(count):
        ns = f"bench-{index:03d}"
        documents += [namespace_doc(ns), small_sample(f"court{index:03d}", ns)]
        wanted.add((ns, f"court{index:03d}"))
    time.sleep(11)  # the liveness endpoint caches probe results for 10 s
    before = bench.probe() or {}
    cpu_before = bench.cpu_seconds()
    started = time.monotonic()
    bench.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(documents))
    applied = time.monotonic() - started
    log(f"  kubectl apply of {len(documents)} objects took {applied:.1f}s")
    bench.wait_ready(wanted, timeout=900)
    total = time.monotonic() - started
    time.sleep(11)
    after = bench.probe() or {}
    passes = after["reconciler"]["passes"] - before["reconciler"]["passes"]
    writes = after["reconciler"]["applies"] - before["reconciler"]["applies"]
    figures[f"create_to_all_{count}_ready_seconds"] = total
    figures["kubectl_apply_seconds"] = applied
    figures["reconciles_during_convergence"] = passes
    figures["reconciles_per_second"] = passes / total
    figures["server_side_applies_during_convergence"] = writes
    figures["server_side_applies_per_second"] = writes / total
    figures["operator_cpu_seconds_during_convergence"] = bench.cpu_seconds() - cpu_before
    figures[f"rss_mib_at_{count + 3}_crs"] = bench.rss_mib()
    figures["rss_peak_mib_while_converging"] = bench.rss_mib("VmHWM")

    log("3) steady state: one resync of every object (operator restarted to force it)")
    bench.stop_operator()
    bench.port = free_port()
    started = time.monotonic()
    bench.start_operator(workers=4)
    # After a restart every object is reconciled once (resume handler + child events).
    target = count + 3
    while bench.passes() < target:
        if time.monotonic() - started > 600:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    figures["restart_full_resync_seconds"] = elapsed
    figures["restart_reconciles_per_second"] = bench.passes() / elapsed
    figures[f"rss_mib_after_restart_{target}_crs"] = bench.rss_mib()
    figures["rss_peak_mib_during_restart_resync"] = bench.rss_mib("VmHWM")
    figures["machine_load_1m_at_end"] = load_average()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=10, help="kwok nodes (110 pods each)")
    args = parser.parse_args()

    log(f"starting a local control plane with {args.nodes} kwok nodes")
    with BenchCluster(nodes=args.nodes) as cluster:
        bench = Bench(cluster)
        bench.start_operator(workers=args.workers)
        try:
            figures = run(bench, args.count)
        finally:
            bench.stop_operator()
    RESULT.write_text(json.dumps(figures, indent=2) + "\n")
    log(f"figures (also in {RESULT}):")
    for key, value in figures.items():
        print(f"  {key:40s} {value:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
