"""The GitOps layout is consistent and valid against the real APIs, for every cloud.

Only the `local` cluster's applications are synced for real (test_gitops_argocd.py); this module
covers what the local test bed cannot run: every level of argocd/ rendered and accepted by the
API server with Argo CD's CRDs, each cluster kind's Applications checked against the projects
Argo CD would enforce, the upstream pins against hack/versions.env and the pinned trees, and
every cloud overlay built and validated server-side with the External Secrets CRDs served.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_testbed.cluster import KubeCluster
from assistente_testbed.gomodules import go_module_dir
from assistente_testbed.paths import read_versions, repo_root

pytestmark = pytest.mark.cluster

ARGOCD = repo_root() / "argocd"
CLUSTER_KINDS = ("aws", "azure", "gcp", "onprem", "local")
CLOUDS = ("aws", "azure", "gcp", "onprem")
DISTRIBUTION = "https://github.com/assistente-digital/assistente-digital.git"
# Upstream source -> (Go module with the same tree at the same tag, pin in hack/versions.env).
UPSTREAM = {
    "https://github.com/cloudnative-pg/cloudnative-pg.git": (
        "github.com/cloudnative-pg/cloudnative-pg",
        "CNPG_VERSION",
    ),
    "https://github.com/prometheus-operator/prometheus-operator.git": (
        "github.com/prometheus-operator/prometheus-operator",
        "PROMETHEUS_OPERATOR_VERSION",
    ),
    "https://github.com/external-secrets/external-secrets.git": (
        "github.com/external-secrets/external-secrets",
        "EXTERNAL_SECRETS_VERSION",
    ),
}


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


def _ensure_namespaces(cluster: KubeCluster, documents: list[dict[str, Any]]) -> None:
    for namespace in {d["metadata"].get("namespace") for d in documents} - {None}:
        if cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", namespace)


def _build_plain(path: Path) -> list[dict[str, Any]]:
    """kustomize build without a cluster (the binary the test bed built)."""
    from assistente_testbed.tools import ensure_tools

    out = subprocess.run(
        [str(ensure_tools(("kustomize",)) / "kustomize"), "build", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _projects() -> dict[str, dict[str, Any]]:
    documents = _build_plain(ARGOCD / "bootstrap") + _build_plain(ARGOCD / "root")
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == "AppProject"}


def _cluster_applications(kind: str) -> list[dict[str, Any]]:
    return [d for d in _build_plain(ARGOCD / "cluster" / kind) if d["kind"] == "Application"]


def _wave(app: dict[str, Any]) -> int:
    annotations = app["metadata"].get("annotations") or {}
    return int(annotations.get("argocd.argoproj.io/sync-wave", "0"))


@pytest.mark.parametrize(
    "level", ["bootstrap", "root", *(f"cluster/{kind}" for kind in CLUSTER_KINDS)]
)
def test_every_level_of_the_layout_is_accepted_by_the_api_server(
    kube_cluster: KubeCluster, level: str
) -> None:
    documents = _kustomize_build(kube_cluster, ARGOCD / level)
    assert documents
    _ensure_namespaces(kube_cluster, documents)
    _dry_run(kube_cluster, documents)


def test_the_application_set_registers_clusters_by_label_and_cannot_escape_its_project() -> None:
    appset = next(d for d in _build_plain(ARGOCD / "root") if d["kind"] == "ApplicationSet")
    spec = appset["spec"]
    assert spec["goTemplateOptions"] == ["missingkey=error"]
    assert "{{" not in spec["template"]["spec"]["project"]
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True
    selector = spec["generators"][0]["clusters"]["selector"]["matchExpressions"]
    overlays = next(e for e in selector if e["key"] == "assistente.digital/overlay")["values"]
    assert sorted(overlays) == sorted(CLUSTER_KINDS)
    for kind in overlays:
        assert (ARGOCD / "cluster" / kind / "kustomization.yaml").exists()


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
def test_every_application_is_allowed_by_its_project(kind: str) -> None:
    """What Argo CD enforces at sync time, checked for clusters the test bed cannot run."""
    projects = _projects()
    for app in _cluster_applications(kind):
        spec = app["spec"]
        project = projects[spec["project"]]["spec"]
        assert spec["source"]["repoURL"] in project["sourceRepos"], app["metadata"]["name"]
        namespaces = [d["namespace"] for d in project["destinations"]]
        namespace = spec["destination"]["namespace"]
        assert any(Path(namespace).match(pattern) for pattern in namespaces), namespace


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
def test_operators_and_crds_come_before_custom_resources(kind: str) -> None:
    apps = {a["metadata"]["name"]: a for a in _cluster_applications(kind)}
    assistant = apps["assistente"]
    assert apps["assistente"]["spec"]["source"]["path"] == f"overlays/{kind}"
    for name, app in apps.items():
        automated = app["spec"]["syncPolicy"]["automated"]
        assert automated == {"prune": True, "selfHeal": True}, name
    assert _wave(apps["prometheus-operator"]) < _wave(apps["assistente-operator"])
    assert _wave(apps["assistente-operator"]) < _wave(assistant)
    assert _wave(apps["assistente-operator"]) < _wave(apps["monitoring"])
    for upstream in ("cloudnative-pg", "external-secrets"):
        if upstream in apps:
            assert _wave(apps[upstream]) < _wave(assistant)
    if kind == "onprem":
        assert "cloudnative-pg" in apps
    if kind in ("aws", "azure", "gcp"):
        assert "external-secrets" in apps


def test_upstream_sources_are_pinned_to_the_versions_the_test_bed_serves() -> None:
    versions = read_versions()
    seen = set()
    for kind in CLUSTER_KINDS:
        for app in _cluster_applications(kind):
            source = app["spec"]["source"]
            if source["repoURL"] == DISTRIBUTION:
                continue
            module, key = UPSTREAM[source["repoURL"]]
            assert source["targetRevision"] == versions[key], app["metadata"]["name"]
            tree = go_module_dir(module, versions[key]) / source["path"]
            assert tree.is_dir(), f"{source['path']} is not in {module}@{versions[key]}"
            include = (source.get("directory") or {}).get("include")
            if include:
                assert (tree / include).is_file(), include
            seen.add(source["repoURL"])
    assert seen == set(UPSTREAM)


@pytest.mark.parametrize("cloud", [*CLOUDS, "local"])
def test_cloud_overlay_builds_and_is_accepted_by_the_api_server(
    kube_cluster: KubeCluster, cloud: str
) -> None:
    operator_install = _kustomize_build(kube_cluster, repo_root() / "operator/config/default")
    documents = _kustomize_build(kube_cluster, repo_root() / "overlays" / cloud)
    kinds = {doc["kind"] for doc in documents}
    assert "AssistenteDigital" in kinds
    assert "Deployment" not in kinds  # the operator is its own Application
    if cloud in ("aws", "azure", "gcp"):
        assert {"SecretStore", "ExternalSecret"} <= kinds
        kube_cluster.install_third_party_crds(["external-secrets"])
    # CRDs and namespaces first (for real), so that the rest can be checked by a dry run.
    first = [
        d
        for d in operator_install + documents
        if d["kind"] in {"CustomResourceDefinition", "Namespace"}
    ]
    kube_cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(first)
    )
    for crd in (d for d in first if d["kind"] == "CustomResourceDefinition"):
        kube_cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}"
        )
    _ensure_namespaces(kube_cluster, documents)
    _dry_run(kube_cluster, [d for d in documents if d not in first])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_cloud_overlays_are_sized_for_a_million_users_and_use_that_clouds_services(
    cloud: str,
) -> None:
    documents = _build_plain(repo_root() / "overlays" / cloud)
    spec = next(d for d in documents if d["kind"] == "AssistenteDigital")["spec"]
    for component in ("api", "worker", "nlu", "actions"):
        autoscaling = spec[component]["autoscaling"]
        assert autoscaling["enabled"] is True
        assert autoscaling["minReplicas"] >= 3, component  # one per zone
    if cloud == "onprem":
        assert spec["postgres"]["mode"] == "cloudnativepg"
        assert spec["postgres"]["cloudnativepg"]["instances"] == 3
        assert spec["redis"]["inCluster"]["persistence"]["enabled"] is True
    else:
        assert spec["postgres"]["mode"] == spec["redis"]["mode"] == "external"
        stores = [d for d in documents if d["kind"] == "ExternalSecret"]
        targets = {s["spec"]["target"]["name"] for s in stores}
        refs = {spec["postgres"]["external"]["secretRef"]["name"]}
        refs |= {spec["redis"]["external"]["secretRef"]["name"]}
        refs |= {spec["actions"]["datajud"]["apiKeySecretRef"]["name"]}
        refs |= {
            c["secretRef"]["name"]
            for c in spec["channels"].values()
            if c.get("enabled") and c.get("secretRef")
        }
        assert refs <= targets, refs - targets
    assert spec["ingress"]["className"]
    placement = spec["placement"]
    assert placement["application"]["nodeSelector"] == {"assistente.digital/pool": "app"}
    assert placement["data"]["nodeSelector"] == {"assistente.digital/pool": "data"}
