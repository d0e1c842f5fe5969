"""The only module that talks to the Kubernetes API server.

It speaks plain REST through the ``kubernetes`` package's HTTP layer (which handles kubeconfig,
in-cluster credentials and TLS) and returns plain dicts; callers never see that package's types.
Children are written with server-side apply under one field manager.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import kubernetes
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from assistente_operator import API_VERSION, FIELD_MANAGER, KIND
from assistente_operator.kinds import EVENT, KINDS, OPTIONAL_KINDS, RESOURCE

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
DISCOVERY_TTL = 30.0


class KubeError(Exception):
    """An API call failed. ``temporary`` says whether retrying later may help."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def temporary(self) -> bool:
        # Conflicts, throttling, server errors and network failures (status 0) pass with time.
        return self.status in (0, 409, 429) or self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    try:
        registered = KINDS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"unknown kind {api_version}/{kind}") from None
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = prefix
    if registered.namespaced and namespace:
        path += f"/namespaces/{quote(namespace)}"
    elif registered.namespaced and name:
        raise ValueError(f"{kind} {name} needs a namespace")
    path += f"/{registered.plural}"
    if name:
        path += f"/{quote(name)}"
    return path


@dataclass
class _DiscoveryCache:
    served: frozenset[tuple[str, str]]
    fetched_at: float


class Client:
    """A small, thread-safe Kubernetes REST client."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        discovery_ttl: float = DISCOVERY_TTL,
    ) -> None:
        self._api = kubernetes.client.ApiClient(configuration)
        self._discovery_ttl = discovery_ttl
        self._discovery: _DiscoveryCache | None = None
        self._discovery_lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, kubeconfig: str | None = None, *, discovery_ttl: float = DISCOVERY_TTL
    ) -> Client:
        """In-cluster credentials when running in a pod, else the kubeconfig."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        configuration.retries = 0  # we own retries (kopf backoff / resync)
        # One connection per reconcile thread, so none is discarded under load.
        configuration.connection_pool_maxsize = 32
        return cls(configuration, discovery_ttl=discovery_ttl)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # --- raw requests -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            serialized = self._api.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT)
            raw = response.read()  # type: ignore[no-untyped-call]
        except ApiException as error:
            raise _api_error(error.status or 0, error.reason or "", error.body) from error
        except (HTTPError, OSError) as error:
            raise KubeError(0, "NetworkError", str(error)) from error
        if not 200 <= response.status <= 299:
            raise _api_error(response.status, response.reason or "", raw)
        return json.loads(raw) if raw else {}

    # --- objects ------------------------------------------------------------------------------

    def apply(self, obj: Obj, *, field_manager: str = FIELD_MANAGER) -> Obj:
        """Server-side apply, forcing ownership of the fields we send."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self._request(
            "PATCH",
            path,
            body=obj,
            query=[("fieldManager", field_manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def apply_replicas(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        replicas: int,
        *,
        field_manager: str,
    ) -> Obj:
        """Server-side applies only ``spec.replicas``, under a field manager of its own."""
        return self.apply(
            {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": replicas},
            },
            field_manager=field_manager,
        )

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return self._request("GET", resource_path(api_version, kind, namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Obj]:
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self._request("GET", resource_path(api_version, kind, namespace), query=query)
        items: list[Obj] = result.get("items", [])
        return items

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
    ) -> None:
        """Deletes an object; ``propagation="Orphan"`` leaves its dependents (e.g. pods) alone."""
        try:
            self._request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={"propagationPolicy": propagation},
            )
        except KubeError as error:
            if not error.not_found:
                raise

    def patch_status(self, namespace: str, name: str, status: Obj) -> Obj:
        path = resource_path(RESOURCE.api_version, RESOURCE.kind, namespace, name) + "/status"
        return self._request(
            "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
        )

    # --- discovery ----------------------------------------------------------------------------

    def served_optional_kinds(self) -> frozenset[tuple[str, str]]:
        """The optional (apiVersion, kind) pairs the API server serves, cached briefly."""
        with self._discovery_lock:
            now = time.monotonic()
            if self._discovery and now - self._discovery.fetched_at < self._discovery_ttl:
                return self._discovery.served
            served: set[tuple[str, str]] = set()
            for api_version in sorted({api for api, _ in OPTIONAL_KINDS}):
                try:
                    resources = self._request("GET", f"/apis/{api_version}").get("resources", [])
                except KubeError as error:
                    if error.not_found:
                        continue
                    raise
                kinds = {r.get("kind") for r in resources if "/" not in r.get("name", "")}
                served |= {
                    (api, kind)
                    for api, kind in OPTIONAL_KINDS
                    if api == api_version and kind in kinds
                }
            self._discovery = _DiscoveryCache(frozenset(served), now)
            return self._discovery.served

    def forget_discovery(self) -> None:
        with self._discovery_lock:
            self._discovery = None

    # --- events -------------------------------------------------------------------------------

    def post_event(self, owner: Obj, event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on the AssistenteDigital (shown by kubectl describe)."""
        meta = owner["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1000],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            path = resource_path(EVENT.api_version, EVENT.kind, meta["namespace"])
            self._request("POST", path, body=event)
        except KubeError as error:  # events are best effort
            logger.warning("could not post event %s: %s", reason, error)


def _api_error(status: int, reason: str, raw: Any) -> KubeError:
    message = ""
    if raw:
        try:
            payload = json.loads(raw)
            message = str(payload.get("message", ""))
            reason = str(payload.get("reason", reason))
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return KubeError(status, reason, message[:2000])
