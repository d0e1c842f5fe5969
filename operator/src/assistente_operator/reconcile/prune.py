"""Prune: delete the children the spec no longer wants.

Only objects that carry the resource's labels *and* its controller reference are candidates, so
nothing created by hand (or by another resource) is ever removed. Pruning lists every child
kind, so it runs once per spec change (and once after a restart), not on every pass.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from assistente_operator.builders import Plan
from assistente_operator.builders.common import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from assistente_operator.k8s import Client
from assistente_operator.kinds import CHILD_KINDS
from assistente_operator.reconcile.apply import Applier, object_key

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences", [])
    )


class Pruner:
    def __init__(self, client: Client, applier: Applier) -> None:
        self.client = client
        self.applier = applier
        # namespace/name -> (uid, generation) whose children were last pruned.
        self._pruned: dict[str, tuple[str, int]] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._pruned.pop(f"{namespace}/{name}", None)

    async def prune_if_due(self, resource: Obj, wanted: Plan) -> int:
        """Prunes unless this generation of the resource was pruned already; returns the count."""
        meta = resource["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        done = (meta["uid"], int(meta.get("generation", 0)))
        if self._pruned.get(key) == done:
            return 0
        pruned = await self.prune(meta["namespace"], meta["name"], meta["uid"], wanted)
        self._pruned[key] = done
        return pruned

    async def prune(self, namespace: str, name: str, uid: str, wanted: Plan) -> int:
        keep = {object_key(obj) for obj in wanted.objects}
        selector = f"{INSTANCE_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        served = await self.client.served_optional_kinds()
        kinds = [kind for kind in CHILD_KINDS if not kind.optional or kind.key in served]
        listed = await asyncio.gather(
            *(self.client.list(k.api_version, k.kind, namespace, selector) for k in kinds)
        )
        unwanted = [
            {**live, "apiVersion": kind.api_version, "kind": kind.kind}
            for kind, items in zip(kinds, listed, strict=True)
            for live in items
        ]
        unwanted = [
            child for child in unwanted if object_key(child) not in keep and _owned_by(child, uid)
        ]
        for child in unwanted:
            logger.info("pruning %s %s", child["kind"], child["metadata"]["name"])
            self.applier.forget(child)
        await asyncio.gather(
            *(
                self.client.delete(
                    child["apiVersion"], child["kind"], namespace, child["metadata"]["name"]
                )
                for child in unwanted
            )
        )
        return len(unwanted)
