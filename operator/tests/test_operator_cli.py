"""The command line, run as users run it (a subprocess of the installed console script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

OPERATOR_DIR = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "assistente-operator")
SAMPLE = OPERATOR_DIR / "config/samples/assistentedigital.yaml"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_render_prints_every_child_as_yaml() -> None:
    result = run("render", str(SAMPLE), "--namespace", "tribunal")
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler", "Ingress"} <= kinds
    assert all(d["metadata"]["namespace"] == "tribunal" for d in documents)


def test_render_rejects_an_invalid_resource_with_a_readable_message() -> None:
    bad = """
apiVersion: assistente.digital/v1alpha1
kind: AssistenteDigital
metadata: {name: x}
spec: {api: {autoscaling: {enabled: true, minReplicas: 9, maxReplicas: 2}}}
"""
    result = run("render", "-", stdin=bad)
    assert result.returncode == 2
    assert "AssistenteDigital x é inválido" in result.stderr
    assert "minReplicas deve ser menor ou igual" in result.stderr
    assert result.stdout == ""


def test_render_without_a_resource_explains_what_is_missing() -> None:
    result = run("render", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert result.returncode != 0
    assert "nenhum AssistenteDigital" in result.stderr


def test_crd_command_prints_the_committed_crd() -> None:
    result = run("crd")
    assert result.returncode == 0
    committed = OPERATOR_DIR / "config/crd/bases/assistente.digital_assistentesdigitais.yaml"
    assert yaml.safe_load(result.stdout) == yaml.safe_load(committed.read_text())
