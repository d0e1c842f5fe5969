"""The operator's RBAC rules, generated from the kinds registry (``assistente-operator rbac``).

Least privilege: exactly the kinds the builders emit, with the verbs ``kinds.py`` says they
need, plus the resource itself, Events, and (cluster-wide only) what kopf reads to follow
namespaces and CRDs. Writes are server-side apply (create, patch) and delete (pruning), never
update. There is no access to Secrets: children name them and the kubelet resolves them.
"""

from __future__ import annotations

from typing import Any

from assistente_operator.kinds import CHILD_KINDS, EVENT, RESOURCE

Manifest = dict[str, Any]

ROLE_NAME = "assistente-operator"


def rules(*, cluster_wide: bool) -> list[Manifest]:
    """The rules, one per (API group, verbs), in a stable order."""
    result: list[Manifest] = [
        # patch: kopf keeps its last-handled state in annotations on the object.
        _rule(RESOURCE.group, [RESOURCE.plural], ("get", "list", "watch", "patch")),
        _rule(RESOURCE.group, [f"{RESOURCE.plural}/status"], ("get", "patch")),
    ]
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for kind in CHILD_KINDS:
        grouped.setdefault((kind.group, kind.verbs), []).append(kind.plural)
    result += [_rule(group, plurals, verbs) for (group, verbs), plurals in grouped.items()]
    event = _rule(EVENT.group, [EVENT.plural], ("create", "patch"))
    event["apiGroups"].append("events.k8s.io")
    result.append(event)
    if cluster_wide:
        # kopf follows namespaces and CRDs as they come and go (read-only). A namespaced
        # operator serves fixed namespaces and turns that scanning off instead.
        result += [
            _rule("apiextensions.k8s.io", ["customresourcedefinitions"], ("get", "list", "watch")),
            _rule("", ["namespaces"], ("get", "list", "watch")),
        ]
    return result


def _rule(group: str, resources: list[str], verbs: tuple[str, ...]) -> Manifest:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


def cluster_role() -> Manifest:
    return _role("ClusterRole", cluster_wide=True)


def namespaced_role() -> Manifest:
    """The same rights within one namespace (kustomize sets it), for the namespaced mode."""
    return _role("Role", cluster_wide=False)


def _role(kind: str, *, cluster_wide: bool) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": ROLE_NAME},
        "rules": rules(cluster_wide=cluster_wide),
    }
