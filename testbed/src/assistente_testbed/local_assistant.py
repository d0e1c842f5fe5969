"""The assistant deployed by its operator onto the real node: the `AssistenteDigital` sized for a
2-core machine on the images built here, with the test bed's PostgreSQL as its external
database. Used by the end-to-end test and by `make cluster-demo`.

The credentials the resource requires are made here, at random, for each deployment: the
components' Secret (Redis password, Rasa's API token, the LGPD audit key) and Rasa's own role and
database on that PostgreSQL, as a court's DBA would create them for the external-database mode.
They go to the API server and PostgreSQL only; nothing prints or stores them elsewhere."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from assistente_testbed.cluster import KubeCluster
from assistente_testbed.images import BuiltImage
from assistente_testbed.operator_runner import install_in_cluster
from assistente_testbed.postgres import PostgresServer
from assistente_testbed.process import ServiceError, wait_until

Manifest = dict[str, Any]
COMPONENT_LABEL = "app.kubernetes.io/component"
# Pods that must be Ready, per component, for the assistant below.
EXPECTED_PODS = {"api": 1, "worker": 2, "nlu": 1, "actions": 1, "redis": 3}


def custom_resource(
    images: dict[str, BuiltImage],
    *,
    name: str,
    namespace: str,
    postgres_secret: str,
    rasa_secret: str,
    security_secret: str,
    trusted_proxies: list[str],
) -> Manifest:
    """An assistant sized for a 2-core test machine, on the images built here. Requests reach
    the API through `trusted_proxies` (the node's relay), as they would through an Ingress."""
    small = {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    return {
        "apiVersion": "assistente.digital/v1alpha1",
        "kind": "AssistenteDigital",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "version": "0.1.0",
            "api": {"replicas": 1, "image": images["api"].ref, "resources": small},
            "worker": {"replicas": 2, "image": images["worker"].ref, "resources": small},
            "nlu": {
                "replicas": 1,
                "image": images["rasa"].ref,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "512Mi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                },
            },
            "actions": {"replicas": 1, "image": images["actions"].ref, "resources": small},
            "channels": {"web": {"enabled": True}},
            "redis": {
                "mode": "inCluster",
                "inCluster": {
                    "replicas": 3,
                    "sentinelQuorum": 2,
                    "image": images["redis"].ref,
                    "exporterImage": images["redis-exporter"].ref,
                    "persistence": {"enabled": False},
                },
            },
            "postgres": {
                "mode": "external",
                "external": {"secretRef": {"name": postgres_secret}},
                "rasaSecretRef": {"name": rasa_secret},
            },
            "security": {"secretRef": {"name": security_secret}},
            # No Ingress: the relay at the node's address stands in for its controller.
            "ingress": {"enabled": False, "trustedProxies": trusted_proxies},
            # Required in production; nothing here logs an agent in, so the identity provider is
            # a name under .invalid that cluster DNS never resolves.
            "oidc": {
                "issuer": "https://sso.invalid/realms/assistente",
                "audience": "assistente-api",
                "jwksUrl": "https://sso.invalid/realms/assistente/protocol/openid-connect/certs",
            },
            "monitoring": {"enabled": False},
            # Level-2 attendants on duty around the clock, so escalations reach a queue.
            "escalation": {
                "serviceHours": {
                    "timezone": "America/Sao_Paulo",
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "start": "00:00",
                    "end": "23:59",
                }
            },
        },
    }


def secret(name: str, namespace: str, data: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def postgres_secret(
    postgres: PostgresServer, database: str, *, host: str, name: str, namespace: str
) -> Manifest:
    """The external-database Secret in the layout the operator documents (operator samples)."""
    dsn = urlsplit(postgres.dsn_for(database))
    uri = f"postgresql://{dsn.username}:{dsn.password}@{host}:5432/{database}"
    data = {"uri": uri, "ro-uri": uri, **_database_keys(dsn, host)}
    return secret(name, namespace, data)


def rasa_database_secret(dsn: str, *, host: str, name: str, namespace: str) -> Manifest:
    """Rasa's own database in the external-mode layout the operator documents (host, port,
    dbname, user, password), at `host` as the pods see the server."""
    return secret(name, namespace, _database_keys(urlsplit(dsn), host))


def _database_keys(dsn: SplitResult, host: str) -> dict[str, str]:
    return {
        "host": host,
        "port": "5432",
        "dbname": dsn.path.lstrip("/"),
        "user": dsn.username or "",
        "password": unquote(dsn.password or ""),
    }


def security_secret(*, name: str, namespace: str) -> Manifest:
    """The components' credentials (spec.security.secretRef), fresh random values. Hex: the
    Redis password must be letters and digits, and each value goes into URLs as it is."""
    data = {
        "redis-password": secrets.token_hex(24),
        "rasa-token": secrets.token_hex(24),
        "lgpd-audit-key": secrets.token_hex(32),
    }
    return secret(name, namespace, data)


def pod_ready(pod: Manifest) -> bool:
    """Running, not being deleted, and every container ready."""
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return (
        pod["metadata"].get("deletionTimestamp") is None
        and len(statuses) == len(pod["spec"]["containers"])
        and all(status.get("ready") for status in statuses)
    )


class LocalAssistant:
    """One assistant in `namespace` of a real-node cluster, from the operator to Ready pods."""

    def __init__(self, cluster: KubeCluster, *, namespace: str, name: str) -> None:
        if cluster.node is None:
            raise ServiceError("the assistant needs a cluster with a real node")
        self.cluster = cluster
        self.node = cluster.node
        self.namespace = namespace
        self.name = name
        self.figures: dict[str, Any] = {}

    def install_operator(self, images: dict[str, BuiltImage]) -> None:
        started = time.monotonic()
        install_in_cluster(self.cluster, images["operator"].ref)
        self.figures["operator_ready_s"] = round(time.monotonic() - started, 1)

    def deploy(self, images: dict[str, BuiltImage], postgres: PostgresServer) -> None:
        """The databases and Secrets, then the custom resource; returns once every pod is
        Ready."""
        suffix = self.name.replace("-", "_")
        database = f"assistente_{suffix}"
        postgres.ensure_database(database)
        # Rasa's role may use its own database only (not the app's, nor create others).
        rasa_dsn = postgres.ensure_owned_database(f"rasa_{suffix}", secrets.token_hex(24))
        host = self.node.publish_host_port(postgres.port, 5432)
        names = {kind: f"{self.name}-{kind}" for kind in ("postgres", "rasa-db", "security")}
        namespace: Manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace},
        }
        self.cluster.apply(
            [
                namespace,
                postgres_secret(
                    postgres,
                    database,
                    host=host,
                    name=names["postgres"],
                    namespace=self.namespace,
                ),
                rasa_database_secret(
                    rasa_dsn, host=host, name=names["rasa-db"], namespace=self.namespace
                ),
                security_secret(name=names["security"], namespace=self.namespace),
            ]
        )
        started = time.monotonic()
        resource = custom_resource(
            images,
            name=self.name,
            namespace=self.namespace,
            postgres_secret=names["postgres"],
            rasa_secret=names["rasa-db"],
            security_secret=names["security"],
            trusted_proxies=[f"{self.node.network.node_ip}/32"],
        )
        self.cluster.apply([resource])
        wait_until(
            self.all_ready,
            timeout=900,
            what="every pod of the assistant Ready",
            interval=2,
            log_path=self.node.logs / "kubelet.log",
        )
        self.figures["custom_resource_to_ready_s"] = round(time.monotonic() - started, 1)

    def pods(self, component: str | None = None) -> list[Manifest]:
        data: Manifest = self.cluster.get_json("pods", "-n", self.namespace)
        pods: list[Manifest] = data["items"]
        if component is None:
            return pods
        return [
            p for p in pods if p["metadata"].get("labels", {}).get(COMPONENT_LABEL) == component
        ]

    def all_ready(self) -> bool:
        self.node.check_alive()
        return all(
            len([p for p in self.pods(component) if pod_ready(p)]) >= count
            for component, count in EXPECTED_PODS.items()
        )

    def api_url(self) -> str:
        """The API Service (its ClusterIP, through kube-proxy), reachable from this machine."""
        service = self.cluster.get_json("service", "-n", self.namespace, f"{self.name}-api")
        spec: Manifest = service["spec"]  # type: ignore[assignment]
        port = self.node.open_to_host(spec["clusterIP"], int(spec["ports"][0]["port"]))
        return f"http://127.0.0.1:{port}"

    def rss_by_pod(self) -> dict[str, float]:
        """Resident memory (MiB) of each pod, from its cgroup (cgroup v1 memory.stat)."""
        return {
            pod["metadata"]["name"]: rss
            for pod in self.pods()
            if (rss := self.node.pod_rss_mib(pod["metadata"]["uid"])) is not None
        }
