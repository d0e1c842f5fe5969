"""The RBAC rules are generated from the kinds registry; the committed ClusterRole must match."""

from __future__ import annotations

from pathlib import Path

import yaml
from assistente_operator.builders import build_children
from assistente_operator.kinds import CHILDREN
from assistente_operator.models import AssistenteDigital
from assistente_operator.rbac import cluster_role, namespaced_role

from .test_operator_builders import with_required

OPERATOR_DIR = Path(__file__).resolve().parents[1]
ROLE_FILE = OPERATOR_DIR / "config/rbac/role.yaml"
NAMESPACED_ROLE_FILE = OPERATOR_DIR / "config/components/namespaced/role.yaml"


def test_committed_cluster_role_matches_the_registry() -> None:
    committed = yaml.safe_load(ROLE_FILE.read_text())
    assert committed == cluster_role(), (
        "operator/config/rbac/role.yaml is stale: run `make operator-rbac`"
    )


def test_committed_namespaced_role_matches_the_registry() -> None:
    committed = yaml.safe_load(NAMESPACED_ROLE_FILE.read_text())
    assert committed == namespaced_role(), (
        "operator/config/components/namespaced/role.yaml is stale: run `make operator-rbac`"
    )


def test_the_namespaced_role_is_the_cluster_role_less_cluster_scoped_reads() -> None:
    cluster_wide = cluster_role()["rules"]
    namespaced = namespaced_role()["rules"]
    assert namespaced == cluster_wide[: len(namespaced)]
    dropped = {r for rule in cluster_wide[len(namespaced) :] for r in rule["resources"]}
    assert dropped == {"customresourcedefinitions", "namespaces"}


def test_every_kind_a_builder_emits_is_registered() -> None:
    everything = {
        "api": {"autoscaling": {"enabled": True}},
        "postgres": {
            "mode": "cloudnativepg",
            "cloudnativepg": {
                "backup": {
                    "enabled": True,
                    "destinationPath": "s3://backups/x",
                    "credentialsSecretRef": {"name": "s3"},
                }
            },
        },
        "ingress": {
            "enabled": True,
            "host": "assistente.example.jus.br",
            "trustedProxies": ["10.0.0.0/8"],
        },
    }
    cr = AssistenteDigital.from_body({"metadata": {"name": "x"}, "spec": with_required(everything)})
    emitted = {(o["apiVersion"], o["kind"]) for o in build_children(cr)}
    assert emitted == set(CHILDREN), "kinds.CHILD_KINDS and the builders disagree"


def test_the_role_grants_every_registered_kind_its_verbs() -> None:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in cluster_role()["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    for kind in CHILDREN.values():
        assert set(kind.verbs) <= granted[(kind.group, kind.plural)], kind.kind
        assert ("watch" in granted[(kind.group, kind.plural)]) == kind.watched, kind.kind
    assert not any(resource == "secrets" for _group, resource in granted)
