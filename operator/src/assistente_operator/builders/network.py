"""Ingress and NetworkPolicies.

Every component accepts traffic only from the components that call it (ingress), and reaches
out only to what it calls (egress): DNS, the components and stores it uses, and, for the API,
the worker and the action server, HTTPS to the outside (channel providers, the identity
provider, DataJud). PostgreSQL (CloudNativePG's pods) accepts the API, the worker, Rasa, its own
replicas and the CloudNativePG operator. The Ingress publishes what citizens, providers and
clerks use, never ``/metrics``, ``/docs`` or the health endpoints.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.builders.redis import REDIS_EXPORTER_PORT
from assistente_operator.models import AssistenteDigital, PostgresMode, StoreMode

# What the Ingress publishes: the widget (exactly /), its files, the API, the clerks' console.
PUBLIC_PATHS: tuple[tuple[str, str], ...] = (
    ("/", "Exact"),
    ("/static", "Prefix"),
    ("/api", "Prefix"),
    ("/atendimento", "Prefix"),
)
DNS_PORTS = ({"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53})


def _port(number: int) -> Manifest:
    return {"protocol": "TCP", "port": number}


def _peers(cr: AssistenteDigital, *components: str) -> list[Manifest]:
    return [{"podSelector": {"matchLabels": common.selector_labels(cr, c)}} for c in components]


def _policy(
    cr: AssistenteDigital,
    component: str,
    ingress: list[Manifest],
    egress: list[Manifest] | None = None,
    *,
    name: str | None = None,
) -> Manifest:
    spec: Manifest = {
        "podSelector": {"matchLabels": common.selector_labels(cr, component)},
        "policyTypes": ["Ingress"],
        "ingress": ingress,
    }
    if egress is not None:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": common.metadata(cr, common.child_name(cr, name or component), component),
        "spec": spec,
    }


def _anywhere(*ports: int) -> Manifest:
    """Ports on any address: external stores and the internet services the assistant calls."""
    return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [_port(p) for p in ports]}


def _to(cr: AssistenteDigital, component: str, *ports: int) -> Manifest:
    return {"to": _peers(cr, component), "ports": [_port(p) for p in ports]}


def _stores(cr: AssistenteDigital) -> list[Manifest]:
    """Egress to PostgreSQL and Redis, wherever they run."""
    rules: list[Manifest] = []
    if cr.spec.postgres.mode == PostgresMode.CLOUDNATIVEPG:
        rules.append(_to(cr, "postgres", 5432))
    else:
        rules.append(_anywhere(5432))
    if cr.spec.redis.mode == StoreMode.IN_CLUSTER:
        rules.append(_to(cr, "redis", 6379, 26379))
    else:
        rules.append(_anywhere(6379, 6380))
    return rules


def _https_ports(cr: AssistenteDigital) -> tuple[int, ...]:
    """443, plus the identity provider's port when it is another one (an in-cluster Keycloak)."""
    ports = {443}
    if cr.spec.oidc is not None:
        for url in (cr.spec.oidc.issuer, cr.spec.oidc.jwks_url):
            split = urlsplit(url)
            ports.add(split.port or (443 if split.scheme == "https" else 80))
    return tuple(sorted(ports))


def network_policies(cr: AssistenteDigital) -> list[Manifest]:
    dns = {"ports": list(DNS_PORTS)}
    app_egress = [dns, *_stores(cr), _to(cr, "nlu", 5005), _anywhere(*_https_ports(cr))]
    policies = [
        # The API is the public entry point (Ingress controller, channel webhooks, Prometheus).
        _policy(cr, "api", [{"ports": [_port(8000)]}], app_egress),
        # The worker only serves health and metrics.
        _policy(cr, "worker", [{"ports": [_port(9101)]}], app_egress),
        _policy(
            cr,
            "nlu",
            [{"from": _peers(cr, "worker", "api"), "ports": [_port(5005)]}],
            [dns, *_stores(cr), _to(cr, "actions", 5055)],
        ),
        _policy(
            cr,
            "actions",
            [
                {"from": _peers(cr, "nlu"), "ports": [_port(5055)]},
                # Its metrics, for Prometheus wherever it runs.
                {"ports": [_port(9102)]},
            ],
            [dns, _anywhere(443)],  # DataJud and https:// knowledge sources
        ),
    ]
    if cr.spec.redis.mode == StoreMode.IN_CLUSTER:
        policies.append(
            _policy(
                cr,
                "redis",
                [
                    {
                        "from": _peers(cr, "api", "worker", "nlu", "redis"),
                        "ports": [_port(6379), _port(26379)],
                    },
                    # The exporter sidecar's metrics, for Prometheus wherever it runs.
                    {"ports": [_port(REDIS_EXPORTER_PORT)]},
                ],
                [dns, _to(cr, "redis", 6379, 26379)],
            )
        )
    if cr.spec.postgres.mode == PostgresMode.CLOUDNATIVEPG:
        operator_namespace = cr.spec.postgres.cloudnativepg.operator_namespace
        policies.append(
            _policy(
                cr,
                "postgres",
                [
                    {
                        "from": _peers(cr, "api", "worker", "nlu", "postgres"),
                        "ports": [_port(5432)],
                    },
                    # Replication between instances, and the instance manager's status port.
                    {"from": _peers(cr, "postgres"), "ports": [_port(5432), _port(8000)]},
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {
                                        "kubernetes.io/metadata.name": operator_namespace
                                    }
                                }
                            }
                        ],
                        "ports": [_port(8000), _port(5432)],
                    },
                ],
                # Egress stays open: the instance manager talks to the API server and backups
                # go to an object store.
            )
        )
    return policies


def ingress(cr: AssistenteDigital) -> Manifest | None:
    spec = cr.spec.ingress
    if not spec.enabled or spec.host is None:
        return None
    backend = {"service": {"name": common.child_name(cr, "api"), "port": {"name": "http"}}}
    ingress_spec: Manifest = {
        "rules": [
            {
                "host": spec.host,
                "http": {
                    "paths": [
                        {"path": path, "pathType": kind, "backend": backend}
                        for path, kind in PUBLIC_PATHS
                    ]
                },
            }
        ]
    }
    if spec.class_name:
        ingress_spec["ingressClassName"] = spec.class_name
    if spec.tls_secret_name:
        ingress_spec["tls"] = [{"hosts": [spec.host], "secretName": spec.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": common.metadata(
            cr, common.child_name(cr, "api"), "api", annotations=dict(spec.annotations)
        ),
        "spec": ingress_spec,
    }


def build(cr: AssistenteDigital) -> list[Manifest]:
    objects = network_policies(cr)
    edge = ingress(cr)
    if edge is not None:
        objects.append(edge)
    return objects
