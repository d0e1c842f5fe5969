"""The one registry of the kinds the operator touches.

``CHILD_KINDS`` lists every kind a builder may emit. It feeds the kopf watch list
(``handlers.py``), pruning (``reconcile/prune.py``), the REST paths (``k8s.py``) and the RBAC
rules (``rbac.py``, ``assistente-operator rbac``). A builder that emits a kind missing here
fails the unit tests; a kind here without RBAC cannot exist, since the rules are generated.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistente_operator import API_VERSION, KIND, PLURAL

# Server-side apply needs create (new objects) and patch; pruning lists and deletes.
WRITE_VERBS = ("create", "patch", "delete")


@dataclass(frozen=True)
class Kind:
    """A kind as the REST API addresses it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        """The API group; empty for the core group (``v1``)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def key(self) -> tuple[str, str]:
        return (self.api_version, self.kind)


@dataclass(frozen=True)
class ChildKind(Kind):
    """A kind the builders emit as a child of an AssistenteDigital."""

    optional: bool = False
    """It comes from a CRD that may be missing (CloudNativePG, Prometheus Operator): the
    reconciler asks discovery before applying it and reports what it skipped."""
    status_updates: bool = False
    """A controller keeps writing its status, which moves its resourceVersion but not its
    generation (so such changes need no re-apply)."""
    read_by_pods: bool = False
    """Pods read it when they start (config, identity, peers' names): it is applied before the
    workloads, so new pods find it."""

    @property
    def watched(self) -> bool:
        """Child events trigger a pass. Optional kinds are not watched: kopf's watcher takes the
        whole operator down when a watched CRD is deleted; the resync loop covers them."""
        return not self.optional

    @property
    def verbs(self) -> tuple[str, ...]:
        """What the operator's RBAC must allow on this kind."""
        read = ("get", "list", "watch") if self.watched else ("get", "list")
        return read + WRITE_VERBS


CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("v1", "ConfigMap", "configmaps", read_by_pods=True),
    ChildKind("v1", "Service", "services", read_by_pods=True),
    ChildKind("v1", "ServiceAccount", "serviceaccounts", read_by_pods=True),
    ChildKind("apps/v1", "Deployment", "deployments", status_updates=True),
    ChildKind("apps/v1", "StatefulSet", "statefulsets", status_updates=True),
    ChildKind(
        "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", status_updates=True
    ),
    ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", status_updates=True),
    ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ChildKind("networking.k8s.io/v1", "Ingress", "ingresses"),
    ChildKind("postgresql.cnpg.io/v1", "Cluster", "clusters", optional=True),
    ChildKind("postgresql.cnpg.io/v1", "ScheduledBackup", "scheduledbackups", optional=True),
    ChildKind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors", optional=True),
    ChildKind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors", optional=True),
    ChildKind("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules", optional=True),
)

CHILDREN: dict[tuple[str, str], ChildKind] = {kind.key: kind for kind in CHILD_KINDS}
OPTIONAL_KINDS: frozenset[tuple[str, str]] = frozenset(k.key for k in CHILD_KINDS if k.optional)

# The other kinds the operator reads or writes: its own resource and the Events it posts.
RESOURCE = Kind(API_VERSION, KIND, PLURAL)
EVENT = Kind("v1", "Event", "events")

KINDS: dict[tuple[str, str], Kind] = {k.key: k for k in (*CHILD_KINDS, RESOURCE, EVENT)}


def child_kind(api_version: str, kind: str) -> ChildKind:
    """The registry entry of a child; a KeyError names a kind someone forgot to register."""
    try:
        return CHILDREN[(api_version, kind)]
    except KeyError:
        raise KeyError(f"{api_version} {kind} is not in kinds.CHILD_KINDS") from None
