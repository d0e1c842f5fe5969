"""kopf handlers: thin adapters from kopf's world to the Reconciler.

- spec changes (create/update/resume) reconcile at once, with kopf's retry/backoff semantics;
- any event of a child we manage (edited, deleted, status changed) queues its owner;
- a resync loop queues every object periodically (drift repair even if a watch went quiet).

There are no delete handlers, timers or daemons on purpose: those make kopf put a finalizer on
the object, and deletion must work even when the operator is down (garbage collection does it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

import kopf

from assistente_operator import API_VERSION, GROUP, KIND, PLURAL, VERSION, metrics
from assistente_operator.builders.common import MANAGED_BY, MANAGED_BY_LABEL
from assistente_operator.k8s import Client, KubeError
from assistente_operator.kinds import CHILD_KINDS
from assistente_operator.reconcile import InvalidSpecError, ReconcileFailedError, Reconciler
from assistente_operator.scheduler import Scheduler
from assistente_operator.settings import OperatorConfig, configure_kopf

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: OperatorConfig
    client: Client
    reconciler: Reconciler
    scheduler: Scheduler
    resync_task: asyncio.Task[None] | None = None


def _runtime(memo: Any) -> Runtime:
    runtime: Runtime = memo.runtime
    return runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: OperatorConfig = memo.get("config") or OperatorConfig()
    configure_kopf(settings, config)
    client = Client.from_environment(config.kubeconfig, discovery_ttl=config.discovery_ttl)
    reconciler = Reconciler(client, concurrent_passes=config.workers)
    scheduler = Scheduler(reconciler.reconcile_by_name, workers=config.workers)
    scheduler.start()
    metrics.serve(config.metrics)
    runtime = Runtime(config=config, client=client, reconciler=reconciler, scheduler=scheduler)
    runtime.resync_task = asyncio.create_task(_resync_forever(runtime), name="resync")
    memo.runtime = runtime
    logger.info(
        "assistente-operator started (namespaces=%s, resync=%ss, workers=%s)",
        ",".join(config.namespaces) or "*",
        config.resync_seconds,
        config.workers,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime = memo.get("runtime")
    if runtime is None:
        return
    if runtime.resync_task is not None:
        runtime.resync_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runtime.resync_task
    await runtime.scheduler.stop()
    await runtime.client.close()


@kopf.on.probe(id="reconciler")
def probe(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    runtime = _runtime(memo)
    return {
        "queued": runtime.scheduler.depth,
        "passes": runtime.reconciler.passes,
        "failures": runtime.reconciler.failures,
        "applies": runtime.reconciler.applies,
    }


async def _resync_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.config.resync_seconds)
        try:
            for namespace, name in await _list_objects(runtime):
                runtime.scheduler.enqueue(namespace, name)
        except KubeError as error:
            logger.warning("resync listing failed: %s", error)


async def _list_objects(runtime: Runtime) -> list[tuple[str, str]]:
    patterns = runtime.config.namespaces
    if runtime.config.namespaced:
        # Plain namespace names: list only those (works with namespace-scoped RBAC).
        items = [i for ns in patterns for i in await runtime.client.list(API_VERSION, KIND, ns)]
    else:
        items = await runtime.client.list(API_VERSION, KIND, None)
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]
    if patterns:
        keys = [k for k in keys if any(fnmatch(k[0], p) for p in patterns)]
    return keys


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile_spec(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    runtime = _runtime(memo)
    try:
        await runtime.reconciler.reconcile(dict(body))
    except InvalidSpecError as error:
        raise kopf.PermanentError(f"spec inválido: {error}") from error
    except ReconcileFailedError as error:
        if error.temporary:
            raise kopf.TemporaryError(str(error), delay=_backoff(retry)) from error
        # Recorded in status and as an Event; the resync will try again, slowly.
        raise kopf.PermanentError(str(error)) from error
    except KubeError as error:
        if error.temporary:
            raise kopf.TemporaryError(str(error), delay=_backoff(retry)) from error
        raise kopf.PermanentError(str(error)) from error


def _backoff(retry: int) -> float:
    return float(min(2 ** min(retry, 8), 300))


async def _enqueue_owner(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
    # async: runs on the loop, where the cache and the queue live (kopf runs sync handlers in
    # threads).
    runtime = memo.get("runtime")
    if runtime is None:
        return
    runtime.reconciler.observe(dict(body), deleted=type == "DELETED")
    for ref in body.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("controller") and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            runtime.scheduler.enqueue(body["metadata"]["namespace"], ref["name"])


# Kinds from optional CRDs (CloudNativePG, Prometheus Operator) are deliberately not watched
# (see kinds.ChildKind.watched); the resync loop picks up their drift and readiness instead.
for _kind in CHILD_KINDS:
    if _kind.watched:
        kopf.on.event(
            group=_kind.group,
            version=_kind.version,
            plural=_kind.plural,
            labels={MANAGED_BY_LABEL: MANAGED_BY},
            id=f"child-{_kind.plural}",
        )(_enqueue_owner)
