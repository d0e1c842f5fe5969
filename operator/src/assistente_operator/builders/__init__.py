"""Pure builders: an AssistenteDigital in, the manifests of its children out.

Nothing here talks to the API server or imports kopf/kubernetes; the same functions back the
reconciler and ``assistente-operator render``.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistente_operator.builders import monitoring, network, postgres, redis, workloads
from assistente_operator.builders.common import ChildRef, Manifest
from assistente_operator.kinds import OPTIONAL_KINDS
from assistente_operator.models import COMPONENTS, AssistenteDigital


@dataclass(frozen=True)
class ChildNames:
    """Which child shows each component's state, named by the builders that render it.

    Keys are the components in status order (``api``, ``nlu``, ``actions``, ``worker``,
    ``redis``, ``postgres``); ``None`` means the component runs outside the cluster.
    """

    components: dict[str, ChildRef | None]

    def refs(self) -> set[ChildRef]:
        return {ref for ref in self.components.values() if ref is not None}


@dataclass(frozen=True)
class Plan:
    """What to apply, which wanted objects this cluster cannot store, and the names to watch."""

    objects: list[Manifest]
    skipped: list[Manifest]
    names: ChildNames


def child_names(cr: AssistenteDigital) -> ChildNames:
    components: dict[str, ChildRef | None] = {
        component: workloads.deployment_ref(cr, component) for component in COMPONENTS
    }
    components["redis"] = redis.statefulset_ref(cr)
    components["postgres"] = postgres.cluster_ref(cr)
    return ChildNames(components)


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
    return Plan(objects=objects, skipped=skipped, names=child_names(cr))
