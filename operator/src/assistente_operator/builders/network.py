"""Ingress and NetworkPolicies.

Policies restrict *ingress* only: each component accepts traffic from the components that call
it. Egress stays open because the stores may be external (managed databases) and DNS must work.
"""

from __future__ import annotations

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.builders.redis import REDIS_EXPORTER_PORT
from assistente_operator.models import AssistenteDigital, StoreMode


def _peers(cr: AssistenteDigital, *components: str) -> list[Manifest]:
    return [{"podSelector": {"matchLabels": common.selector_labels(cr, c)}} for c in components]


def _policy(
    cr: AssistenteDigital, component: str, rules: list[Manifest], *, name: str | None = None
) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": common.metadata(cr, common.child_name(cr, name or component), component),
        "spec": {
            "podSelector": {"matchLabels": common.selector_labels(cr, component)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def network_policies(cr: AssistenteDigital) -> list[Manifest]:
    def port(number: int) -> Manifest:
        return {"protocol": "TCP", "port": number}

    policies = [
        # The API is the public entry point (Ingress controller, channel webhooks, Prometheus).
        _policy(cr, "api", [{"ports": [port(8000)]}]),
        # The worker only serves health and metrics.
        _policy(cr, "worker", [{"ports": [port(9101)]}]),
        _policy(cr, "nlu", [{"from": _peers(cr, "worker", "api"), "ports": [port(5005)]}]),
        _policy(
            cr,
            "actions",
            [
                {"from": _peers(cr, "nlu"), "ports": [port(5055)]},
                # Its metrics, for Prometheus wherever it runs.
                {"ports": [port(9102)]},
            ],
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
                        "ports": [port(6379), port(26379)],
                    },
                    # The exporter sidecar's metrics, for Prometheus wherever it runs.
                    {"ports": [port(REDIS_EXPORTER_PORT)]},
                ],
            )
        )
    return policies


def ingress(cr: AssistenteDigital) -> Manifest | None:
    spec = cr.spec.ingress
    if not spec.enabled or spec.host is None:
        return None
    ingress_spec: Manifest = {
        "rules": [
            {
                "host": spec.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": common.child_name(cr, "api"),
                                    "port": {"name": "http"},
                                }
                            },
                        }
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
