"""A manifest scan: checkov over everything we ship to a cluster — every cloud overlay as
kustomize renders it (operator install, CRD, RBAC, the assistant resource) and the children the
operator renders for each overlay's resource and for a resource with every option switched on.

Every failed check must be fixed in the builders or explained in
``tests/delivery/checkov_skips.yaml`` (check id -> why it does not apply, or what covers it);
an explanation nothing needs any more fails the test too, so the list stays true. checkov runs
from its own cached virtualenv (hack/checkov.sh), offline.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_operator.builders import build_children
from assistente_operator.models import AssistenteDigital
from assistente_testbed.paths import repo_root
from assistente_testbed.tools import ensure_tools, run_hack_script

CLOUDS = ("aws", "azure", "gcp", "onprem")
SKIPS = Path(__file__).with_name("checkov_skips.yaml")


def every_option(body: dict[str, Any]) -> dict[str, Any]:
    """The sample with every child the builders can render switched on."""
    spec = body["spec"]
    for channel in ("whatsapp", "telegram", "voice"):
        spec["channels"][channel] = {"enabled": True, "secretRef": {"name": f"tjxx-{channel}"}}
    spec["api"]["autoscaling"] = {"enabled": True, "minReplicas": 2, "maxReplicas": 10}
    spec["redis"]["inCluster"]["persistence"] = {"enabled": True, "size": "5Gi"}
    spec["postgres"] = {
        "mode": "cloudnativepg",
        "rasaSecretRef": {"name": "tjxx-rasa-db"},
        "cloudnativepg": {
            "backup": {
                "enabled": True,
                "destinationPath": "s3://backups/tjxx",
                "credentialsSecretRef": {"name": "tjxx-backup"},
            }
        },
    }
    return body


def render(target: Path) -> list[Path]:
    kustomize = ensure_tools(("kustomize",)) / "kustomize"
    written = []
    sample = yaml.safe_load(
        (repo_root() / "operator/config/samples/assistentedigital.yaml").read_text()
    )
    resources: dict[str, dict[str, Any]] = {"every-option": every_option(sample)}
    # The operator's install base, then each cloud's overlay (which installs the resource only).
    bases = {"operator": repo_root() / "operator/config/default"}
    bases.update({f"overlay-{cloud}": repo_root() / "overlays" / cloud for cloud in CLOUDS})
    for name, base in bases.items():
        out = subprocess.run(
            [str(kustomize), "build", str(base)],
            capture_output=True,
            text=True,
            check=True,
        )
        documents = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
        path = target / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        written.append(path)
        for doc in documents:
            if doc["kind"] == "AssistenteDigital":
                resources[name.removeprefix("overlay-")] = doc
    for name, body in resources.items():
        body["metadata"].setdefault("namespace", "assistente-digital")
        children = build_children(AssistenteDigital.from_body(body))
        path = target / f"children-{name}.yaml"
        path.write_text(yaml.safe_dump_all(children, sort_keys=False))
        written.append(path)
    return written


def checkov_failures(directory: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    checkov = run_hack_script("checkov.sh", timeout=1800)
    env = {
        **os.environ,
        # Offline: no platform, no policy download, no version check.
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "ENABLE_VERSION_CHECK": "false",
        "PYTHONWARNINGS": "ignore",
    }
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1800,
    )
    # 0: all passed, 1: some failed; anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-4000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: list[dict[str, Any]] = []
    summary: Counter[str] = Counter()
    for item in reports:
        failed += item.get("results", {}).get("failed_checks", [])
        for key in ("passed", "failed", "skipped"):
            summary[key] += int(item.get("summary", {}).get(key, 0))
    return failed, dict(summary)


def test_every_shipped_manifest_passes_the_scan_or_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = render(tmp_path)
    assert len(files) == len(CLOUDS) * 2 + 2
    failed, summary = checkov_failures(tmp_path)
    skips: dict[str, str] = yaml.safe_load(SKIPS.read_text())
    assert all(isinstance(reason, str) and len(reason) > 20 for reason in skips.values())
    unexplained = sorted(
        {
            f"{f['check_id']} {f['check_name']} ({f['resource']}, {Path(f['file_path']).name})"
            for f in failed
            if f["check_id"] not in skips
        }
    )
    stale = sorted(set(skips) - {f["check_id"] for f in failed})
    with capsys.disabled():
        explained = Counter(f["check_id"] for f in failed if f["check_id"] in skips)
        print(
            f"\nmanifest scan (checkov): {summary.get('passed', 0)} passed, "
            f"{summary.get('failed', 0)} failed of which {sum(explained.values())} explained "
            f"in {SKIPS.name} ({len(explained)} checks), over {len(files)} rendered files"
        )
    assert not unexplained, "fix these in the builders or explain them:\n" + "\n".join(unexplained)
    assert not stale, f"explanations no finding needs any more (remove them): {stale}"
