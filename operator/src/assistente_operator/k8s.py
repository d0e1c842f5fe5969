"""The only module that talks to the Kubernetes API server.

An asyncio client on aiohttp, so one operator process keeps many requests in flight (applies of
many children, passes of many objects) without a thread each. The ``kubernetes`` package only
loads the credentials (kubeconfig or in-cluster, with token refresh); requests are plain REST
returning plain dicts, and callers never see either package's types. Children are written with
server-side apply under one field manager.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import kubernetes

from assistente_operator import API_VERSION, FIELD_MANAGER, KIND
from assistente_operator.kinds import EVENT, KINDS, OPTIONAL_KINDS, RESOURCE

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
DISCOVERY_TTL = 30.0
# Requests in flight at once; beyond this they queue in the client (kind to the API server).
MAX_IN_FLIGHT = 32


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


def _ssl_context(configuration: kubernetes.client.Configuration) -> ssl.SSLContext:
    if configuration.verify_ssl:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class Client:
    """A small asyncio Kubernetes REST client (one per event loop)."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        discovery_ttl: float = DISCOVERY_TTL,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._configuration = configuration
        self._base_url = str(configuration.host).rstrip("/")
        self._ssl = _ssl_context(configuration) if self._base_url.startswith("https") else None
        self._max_in_flight = max_in_flight
        self._session: aiohttp.ClientSession | None = None
        self._discovery_ttl = discovery_ttl
        self._discovery: _DiscoveryCache | None = None
        self._discovery_lock = asyncio.Lock()

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
        return cls(configuration, discovery_ttl=discovery_ttl)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_in_flight, ssl=self._ssl if self._ssl is not None else True
                ),
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT),
                raise_for_status=False,
            )
        return self._session

    def _authorization(self) -> str | None:
        # Runs the refresh hook: in-cluster tokens are rotated by the kubelet.
        bearer = self._configuration.auth_settings().get("BearerToken")
        return str(bearer["value"]) if bearer and bearer.get("value") else None

    # --- raw requests -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self._http().request(
                method, self._base_url + path, params=query or [], data=data, headers=headers
            ) as response:
                raw = await response.read()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise KubeError(0, "NetworkError", str(error) or type(error).__name__) from error
        if not 200 <= status <= 299:
            raise _api_error(status, reason, raw)
        return json.loads(raw) if raw else {}

    # --- objects ------------------------------------------------------------------------------

    async def apply(self, obj: Obj, *, field_manager: str = FIELD_MANAGER) -> Obj:
        """Server-side apply, forcing ownership of the fields we send."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return await self._request(
            "PATCH",
            path,
            body=obj,
            query=[("fieldManager", field_manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    async def apply_replicas(
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
        return await self.apply(
            {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": replicas},
            },
            field_manager=field_manager,
        )

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Obj | None:
        try:
            return await self._request("GET", resource_path(api_version, kind, namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Obj]:
        query = [("labelSelector", label_selector)] if label_selector else []
        path = resource_path(api_version, kind, namespace)
        result = await self._request("GET", path, query=query)
        items: list[Obj] = result.get("items", [])
        return items

    async def delete(
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
            await self._request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={"propagationPolicy": propagation},
            )
        except KubeError as error:
            if not error.not_found:
                raise

    async def patch_status(self, namespace: str, name: str, status: Obj) -> Obj:
        path = resource_path(RESOURCE.api_version, RESOURCE.kind, namespace, name) + "/status"
        return await self._request(
            "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
        )

    # --- discovery ----------------------------------------------------------------------------

    async def served_optional_kinds(self) -> frozenset[tuple[str, str]]:
        """The optional (apiVersion, kind) pairs the API server serves, cached briefly."""
        async with self._discovery_lock:
            now = time.monotonic()
            if self._discovery and now - self._discovery.fetched_at < self._discovery_ttl:
                return self._discovery.served
            served: set[tuple[str, str]] = set()
            for api_version in sorted({api for api, _ in OPTIONAL_KINDS}):
                try:
                    found = await self._request("GET", f"/apis/{api_version}")
                except KubeError as error:
                    if error.not_found:
                        continue
                    raise
                resources = found.get("resources", [])
                kinds = {r.get("kind") for r in resources if "/" not in r.get("name", "")}
                served |= {
                    (api, kind)
                    for api, kind in OPTIONAL_KINDS
                    if api == api_version and kind in kinds
                }
            self._discovery = _DiscoveryCache(frozenset(served), now)
            return self._discovery.served

    def forget_discovery(self) -> None:
        self._discovery = None

    # --- events -------------------------------------------------------------------------------

    async def post_event(self, owner: Obj, event_type: str, reason: str, message: str) -> None:
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
            await self._request("POST", path, body=event)
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
