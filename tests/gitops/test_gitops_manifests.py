"""The GitOps layer is valid against the real APIs: every Argo CD manifest passes a server-side
dry run against Argo CD's own CRDs, every cluster config names an overlay that exists, and every
cloud overlay builds with kustomize and is accepted by the API server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.paths import repo_root

pytestmark = pytest.mark.cluster

ARGOCD = repo_root() / "argocd"
CLOUDS = ("aws", "azure", "gcp", "onprem")


def _kustomize_build(cluster: KubeCluster, path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(cluster.bin_dir / "kustomize"), "build", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _dry_run(cluster: KubeCluster, documents: list[dict[str, Any]]) -> None:
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump_all(documents),
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def argocd_namespace(kube_cluster: KubeCluster) -> str:
    if kube_cluster.kubectl("get", "namespace", "argocd", check=False).returncode != 0:
        kube_cluster.kubectl("create", "namespace", "argocd")
    return "argocd"


@pytest.mark.parametrize(
    "path", sorted(ARGOCD.rglob("*.yaml")), ids=lambda p: str(p.relative_to(ARGOCD))
)
def test_argocd_manifest_is_accepted_by_the_argocd_crds(
    kube_cluster: KubeCluster, argocd_namespace: str, path: Path
) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert documents
    _dry_run(kube_cluster, documents)


def test_the_application_set_hard_codes_its_project_and_fails_on_missing_keys() -> None:
    appset = yaml.safe_load((ARGOCD / "applicationsets" / "assistente-digital.yaml").read_text())
    assert appset["spec"]["goTemplateOptions"] == ["missingkey=error"]
    assert "{{" not in appset["spec"]["template"]["spec"]["project"]


@pytest.mark.parametrize(
    "config", sorted(ARGOCD.glob("clusters/*/config.json")), ids=lambda p: p.parent.name
)
def test_cluster_config_names_an_existing_overlay(config: Path) -> None:
    data = json.loads(config.read_text())
    assert data["cluster"]["name"] == config.parent.name
    assert data["cluster"]["server"].startswith("https://")
    assert data["cloud"] in CLOUDS
    assert (repo_root() / "overlays" / data["cloud"] / "kustomization.yaml").exists()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_cloud_overlay_builds_and_is_accepted_by_the_api_server(
    kube_cluster: KubeCluster, cloud: str
) -> None:
    documents = _kustomize_build(kube_cluster, repo_root() / "overlays" / cloud)
    kinds = {doc["kind"] for doc in documents}
    assert {"CustomResourceDefinition", "Deployment", "AssistenteDigital"} <= kinds
    # CRDs and namespaces first (for real), so that the rest can be checked by a dry run.
    first = [d for d in documents if d["kind"] in {"CustomResourceDefinition", "Namespace"}]
    kube_cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(first)
    )
    for crd in (d for d in first if d["kind"] == "CustomResourceDefinition"):
        kube_cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}"
        )
    namespaces = {d["metadata"].get("namespace") for d in documents} - {None}
    for namespace in namespaces:
        if kube_cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0:
            kube_cluster.kubectl("create", "namespace", namespace)
    _dry_run(kube_cluster, [d for d in documents if d not in first])
