"""Apply: server-side apply every wanted child, skipping what cannot have changed.

The cache remembers what the watch last showed of each child and what we last applied to it.
When neither moved since our apply, applying again would be a no-op, so it is skipped: in steady
state a pass writes nothing. Immutable StatefulSet fields are handled by recreating the
StatefulSet without its pods, and autoscaled Deployments are lifted to their HPA's floor.

Children are applied concurrently, in two waves: first what pods read at start (ConfigMaps,
ServiceAccounts, Services; ``ChildKind.read_by_pods``), then everything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from assistente_operator import metrics
from assistente_operator.builders.common import input_hash
from assistente_operator.k8s import Client, KubeError
from assistente_operator.kinds import child_kind

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjectKey = tuple[str, str, str]  # apiVersion, kind, name (within the resource's namespace)
CacheKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name

RECREATE_TIMEOUT = 30.0
SCALE_FLOOR_MANAGER = "assistente-operator-scale-floor"
# Children of unwatched kinds give no event on drift; unchanged ones are re-applied this often.
UNWATCHED_REASSERT_SECONDS = 300.0


def object_key(obj: Obj) -> ObjectKey:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def _cache_key(obj: Obj) -> CacheKey:
    meta = obj.get("metadata", {})
    return (obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""), meta["name"])


@dataclass(frozen=True)
class Fingerprint:
    """What an object looked like right after we applied it."""

    digest: str  # of the manifest we sent
    resource_version: str
    generation: int | None
    metadata_digest: str  # labels and annotations
    spec_digest: str = ""
    """Of the whole spec, for kinds whose spec changes move no generation (HPAs)."""
    applied_at: float = 0.0  # time.monotonic()


def _fingerprint(digest: str, live: Obj) -> Fingerprint:
    meta = live.get("metadata", {})
    generation = meta.get("generation")
    return Fingerprint(
        digest=digest,
        resource_version=str(meta.get("resourceVersion", "")),
        generation=generation,
        metadata_digest=input_hash(meta.get("labels"), meta.get("annotations")),
        spec_digest=input_hash(live.get("spec")) if generation is None else "",
        applied_at=time.monotonic(),
    )


def _unchanged_since(last: Fingerprint, digest: str, seen: Obj) -> bool:
    """True when re-applying ``digest`` could not change the object the watch last showed.

    Either nothing changed at all (same resourceVersion), or only its status did: controllers
    update the status of Deployments, StatefulSets, HPAs and PDBs all the time, which moves the
    resourceVersion but neither the spec nor labels and annotations. The spec is compared by
    generation where the API server keeps one, else by digest: an HPA has no generation, and
    its controller rewrites its status every time the measured load moves.
    """
    if last.digest != digest:
        return False
    current = _fingerprint(digest, seen)
    if current.resource_version == last.resource_version:
        return True
    if last.generation is None:
        spec_unchanged = bool(last.spec_digest) and current.spec_digest == last.spec_digest
    else:
        spec_unchanged = current.generation == last.generation
    return (
        child_kind(seen["apiVersion"], seen["kind"]).status_updates
        and spec_unchanged
        and current.metadata_digest == last.metadata_digest
    )


def _slim(body: Obj) -> Obj:
    """The parts of a child that readiness and the no-op check need; keeps the cache small with
    many objects. Without a generation, the whole spec stays (it is what tells spec changes)."""
    meta = body.get("metadata", {})
    spec = body.get("spec") or {}
    if "generation" not in meta:
        spec_kept = spec
    else:
        spec_kept = {key: spec[key] for key in ("replicas", "instances") if key in spec}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            key: meta[key]
            for key in (
                "name",
                "namespace",
                "resourceVersion",
                "generation",
                "uid",
                "labels",
                "annotations",
            )
            if key in meta
        },
        "spec": spec_kept,
        "status": body.get("status") or {},
    }


@dataclass
class Applied:
    """The outcome of applying a plan's objects."""

    live: dict[ObjectKey, Obj] = field(default_factory=dict)
    """What the API server holds now, per child (or what we sent, for skipped no-ops)."""
    errors: list[str] = field(default_factory=list)
    temporary: bool = False
    """Retrying soon may fix the errors (conflicts, throttling, a CRD that just went away)."""
    namespace_terminating: bool = False


class Applier:
    """Applies children through the client, remembering enough to skip no-op applies.

    It lives on the operator's event loop, like everything that calls it, so the cache needs no
    lock.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.applies = 0  # server-side apply calls (skipped no-ops are not counted)
        self._observed: dict[CacheKey, Obj] = {}
        self._last_applied: dict[CacheKey, Fingerprint] = {}

    # --- the cache ----------------------------------------------------------------------------

    def observe(self, body: Obj, *, deleted: bool) -> None:
        """Records a child as the watch shows it (called from the child event handler)."""
        key = _cache_key(body)
        if deleted:
            self._observed.pop(key, None)
            self._last_applied.pop(key, None)
        else:
            self._observed[key] = _slim(body)

    def forget(self, obj: Obj) -> None:
        """Drops a child from the cache, so its next apply is sent for real."""
        key = _cache_key(obj)
        self._observed.pop(key, None)
        self._last_applied.pop(key, None)

    # --- applying -----------------------------------------------------------------------------

    async def apply_all(self, objects: list[Obj], *, read_back: set[ObjectKey]) -> Applied:
        """Applies ``objects``; ``read_back`` names unwatched children whose live state (status)
        the caller needs even when nothing is sent."""
        result = Applied()
        first = [o for o in objects if child_kind(o["apiVersion"], o["kind"]).read_by_pods]
        then = [o for o in objects if not child_kind(o["apiVersion"], o["kind"]).read_by_pods]
        for wave in (first, then):
            outcomes = await asyncio.gather(
                *(self.apply(obj, read_back=object_key(obj) in read_back) for obj in wave),
                return_exceptions=True,
            )
            for obj, outcome in zip(wave, outcomes, strict=True):
                if isinstance(outcome, KubeError):
                    self._record_failure(result, obj, outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    result.live[object_key(obj)] = outcome
            if result.namespace_terminating:
                return result
        await self._raise_to_autoscaling_floors(objects, result.live)
        return result

    def _record_failure(self, result: Applied, obj: Obj, error: KubeError) -> None:
        if error.status == 403 and "being terminated" in error.message:
            # The namespace is going away with everything in it; nothing to repair.
            result.namespace_terminating = True
            return
        logger.warning("apply %s/%s failed: %s", obj["kind"], obj["metadata"]["name"], error)
        result.errors.append(
            f"{obj['kind']} {obj['metadata']['name']}: {error.message or error.reason}"
        )
        optional = child_kind(obj["apiVersion"], obj["kind"]).optional
        if optional and error.not_found:
            # Its CRD was removed since discovery ran: look again on the retry.
            self.client.forget_discovery()
        result.temporary = result.temporary or error.temporary or (optional and error.not_found)

    async def apply(self, obj: Obj, *, read_back: bool = False) -> Obj:
        key = _cache_key(obj)
        digest = input_hash(obj)
        seen = self._observed.get(key)
        last = self._last_applied.get(key)
        if not child_kind(obj["apiVersion"], obj["kind"]).watched:
            # No event tells us about drift: re-assert these now and then, not on every pass.
            recent = (
                last is not None
                and last.digest == digest
                and time.monotonic() - last.applied_at < UNWATCHED_REASSERT_SECONDS
            )
            if recent and not read_back:
                return obj
            if recent:
                meta = obj["metadata"]
                current = await self.client.get(
                    obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]
                )
                if current is not None:
                    return current
        elif seen is not None and last is not None and _unchanged_since(last, digest, seen):
            return seen
        live = await self._apply_or_recreate(obj)
        self.applies += 1
        metrics.APPLIES.inc()
        self._last_applied[key] = _fingerprint(digest, live)
        return live

    async def _apply_or_recreate(self, obj: Obj) -> Obj:
        try:
            return await self.client.apply(obj)
        except KubeError as error:
            immutable = error.status == 422 and "Forbidden" in error.message
            if not (obj["kind"] == "StatefulSet" and immutable):
                raise
            # volumeClaimTemplates and a few other fields are immutable. Recreate the
            # StatefulSet without touching its pods (orphan), which it adopts again.
            logger.info("recreating StatefulSet %s: %s", obj["metadata"]["name"], error.message)
            api_version, kind = obj["apiVersion"], obj["kind"]
            namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            await self.client.delete(api_version, kind, namespace, name, propagation="Orphan")
            deadline = time.monotonic() + RECREATE_TIMEOUT
            while await self.client.get(api_version, kind, namespace, name):
                if time.monotonic() > deadline:
                    raise KubeError(409, "Conflict", "StatefulSet still being deleted") from error
                await asyncio.sleep(0.2)  # the garbage collector removes the orphan finalizer
            return await self.client.apply(obj)

    async def _raise_to_autoscaling_floors(
        self, objects: list[Obj], live: dict[ObjectKey, Obj]
    ) -> None:
        """A new autoscaled workload starts at 1 pod; lift it to its HPA's minReplicas at once.

        The operator's own field manager never sends ``replicas`` under an HPA (so it never
        resets what the HPA chose). Only when the count is below the HPA's floor, which the HPA
        would enforce anyway on its next sync, a separate manager sets the floor.
        """
        for hpa in objects:
            if hpa["kind"] != "HorizontalPodAutoscaler":
                continue
            target = hpa["spec"]["scaleTargetRef"]
            key = (target["apiVersion"], target["kind"], target["name"])
            floor = int(hpa["spec"]["minReplicas"])
            current = live.get(key)
            if current is None or int(current.get("spec", {}).get("replicas", 1)) >= floor:
                continue
            live[key] = await self.client.apply_replicas(
                *key[:2],
                hpa["metadata"]["namespace"],
                target["name"],
                floor,
                field_manager=SCALE_FLOOR_MANAGER,
            )
