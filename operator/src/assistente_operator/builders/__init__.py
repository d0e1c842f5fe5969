"""Pure builders: an AssistenteDigital in, the manifests of its children out.

Nothing here talks to the API server or imports kopf/kubernetes; the same functions back the
reconciler and ``assistente-operator render``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistente_operator.builders import monitoring, network, postgres, redis, workloads
from assistente_operator.builders.common import Manifest
from assistente_operator.models import AssistenteDigital

# Kinds whose CRDs may be missing; the reconciler asks discovery before applying them.
OPTIONAL_KINDS: dict[tuple[str, str], str] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitors",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrules",
    ("postgresql.cnpg.io/v1", "Cluster"): "clusters",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "scheduledbackups",
}


@dataclass(frozen=True)
class Plan:
    """What to apply, and which wanted objects cannot be created on this cluster."""

    objects: list[Manifest]
    skipped: list[Manifest] = field(default_factory=list)


def build_children(cr: AssistenteDigital) -> list[Manifest]:
    """Every child the spec asks for, in apply order (config before the pods that read it)."""
    return [
        *workloads.build(cr),
        *redis.build(cr),
        *postgres.build(cr),
        *network.build(cr),
        *monitoring.build(cr),
    ]


def plan(cr: AssistenteDigital, served: frozenset[tuple[str, str]] | None = None) -> Plan:
    """Splits the children into those the cluster can store and those it cannot.

    ``served`` lists the optional (apiVersion, kind) pairs the API server offers; ``None``
    means all of them (rendering without a cluster).
    """
    objects: list[Manifest] = []
    skipped: list[Manifest] = []
    for obj in build_children(cr):
        key = (obj["apiVersion"], obj["kind"])
        if served is not None and key in OPTIONAL_KINDS and key not in served:
            skipped.append(obj)
        else:
            objects.append(obj)
    return Plan(objects=objects, skipped=skipped)
