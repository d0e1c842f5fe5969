"""Helpers shared by the builders: names, labels, owner references, hardened pod settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from assistente_operator import API_VERSION, KIND
from assistente_operator.models import (
    AssistenteDigital,
    DeletionPolicy,
    PoolPlacement,
    Resources,
)

Manifest = dict[str, Any]

MANAGED_BY = "assistente-operator"
PART_OF = "assistente-digital"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INPUT_HASH_ANNOTATION = "assistente.digital/input-hash"
METRICS_PORT_NAME = "metrics"


@dataclass(frozen=True)
class ChildRef:
    """One child, as the API server addresses it within the resource's namespace."""

    api_version: str
    kind: str
    name: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.api_version, self.kind, self.name)


def child_name(cr: AssistenteDigital, suffix: str) -> str:
    return f"{cr.metadata.name}-{suffix}"


def selector_labels(cr: AssistenteDigital, component: str) -> dict[str, str]:
    """Labels that select a component's pods; they never change, so selectors stay valid."""
    return {
        "app.kubernetes.io/name": PART_OF,
        INSTANCE_LABEL: cr.metadata.name,
        COMPONENT_LABEL: component,
    }


def common_labels(cr: AssistenteDigital, component: str) -> dict[str, str]:
    return {
        **selector_labels(cr, component),
        "app.kubernetes.io/part-of": PART_OF,
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/version": cr.spec.version,
    }


def pod_labels(cr: AssistenteDigital, component: str) -> dict[str, str]:
    return {**cr.spec.monitoring.log_labels, **common_labels(cr, component)}


def owner_references(cr: AssistenteDigital) -> list[Manifest]:
    """The controller reference; empty when rendering without a cluster (no uid yet)."""
    if not cr.metadata.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": cr.metadata.name,
            "uid": cr.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def metadata(
    cr: AssistenteDigital,
    name: str,
    component: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owned: bool = True,
) -> Manifest:
    """Name, namespace and labels; ``owned`` adds the controller reference, so the garbage
    collector deletes the child with the resource."""
    meta: Manifest = {
        "name": name,
        "namespace": cr.metadata.namespace,
        "labels": {**(labels or {}), **common_labels(cr, component)},
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    owners = owner_references(cr) if owned else []
    if owners:
        meta["ownerReferences"] = owners
    return meta


def deleted_with_resource(cr: AssistenteDigital) -> bool:
    """Whether the data stores (database, Redis volumes) go when the resource is deleted."""
    return cr.spec.deletion_policy == DeletionPolicy.DELETE


def input_hash(*inputs: Any) -> str:
    """A stable digest of everything a pod reads besides its own template."""
    encoded = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def resources(spec: Resources) -> Manifest:
    return {
        "requests": {"cpu": spec.requests.cpu, "memory": spec.requests.memory},
        "limits": {"cpu": spec.limits.cpu, "memory": spec.limits.memory},
    }


def pod_security_context(uid: int = 10001) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probes(port: str, *, ready_path: str, live_path: str, startup_seconds: int) -> Manifest:
    """Startup, readiness and liveness probes on named ports.

    The startup probe gives slow starters (Rasa loads its model) ``startup_seconds`` before the
    liveness probe may kill them.
    """
    period = 5
    return {
        "startupProbe": {
            "httpGet": {"path": live_path, "port": port},
            "periodSeconds": period,
            "failureThreshold": max(1, startup_seconds // period),
            "timeoutSeconds": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": ready_path, "port": port},
            "periodSeconds": 10,
            "failureThreshold": 3,
            "timeoutSeconds": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": live_path, "port": port},
            "periodSeconds": 20,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
    }


def tmp_volume() -> tuple[Manifest, Manifest]:
    """An emptyDir for /tmp, needed with a read-only root filesystem."""
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir, not a shared /tmp
    )


def placement(pool: PoolPlacement) -> Manifest:
    """``nodeSelector`` and ``tolerations`` for a pod spec (nothing when the pool is unset)."""
    fields: Manifest = {}
    if pool.node_selector:
        fields["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        fields["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in pool.tolerations
        ]
    return fields
