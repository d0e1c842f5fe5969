"""What every stack installs on its cluster through the Kubernetes provider."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from assistente_pulumi.manifests import Manifest


def resource_type(obj: Mapping[str, Any]) -> str:
    """Pulumi's type token of a Kubernetes object, e.g. ``kubernetes:apps/v1:Deployment``."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def object_name(obj: Mapping[str, Any]) -> str:
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


class KubernetesObject(pulumi.CustomResource):
    """Any Kubernetes object, applied as written (server-side apply by the provider).

    The install base is rendered by kustomize, so its kinds are only known at run time; the
    provider accepts every kind through the same type tokens its typed classes use.
    """

    def __init__(
        self,
        obj: Manifest,
        opts: pulumi.ResourceOptions,
        *,
        secret_fields: Sequence[str] = (),
    ) -> None:
        props = dict(obj)
        for key in secret_fields:
            if key in props:
                props[key] = pulumi.Output.secret(props[key])
        super().__init__(
            resource_type(obj),
            object_name(obj),
            props,
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=list(secret_fields))
            ),
        )


@dataclass(frozen=True)
class SecretSpec:
    """A Secret the AssistenteDigital refers to; values are Pulumi outputs marked secret."""

    name: str
    string_data: Mapping[str, pulumi.Input[str]]
    type: str = "Opaque"
    generated: Mapping[str, str] = field(default_factory=dict)
    """Values this run generated because the config gave none. They go in ``data`` and later
    runs ignore them (the provider keeps a Secret's content as ``data``), so the Secret keeps
    those of its first `up`: a second `up` changes nothing and never rotates a password under
    running pods."""

    def data(self) -> dict[str, pulumi.Output[str]]:
        return {
            key: pulumi.Output.secret(base64.b64encode(value.encode()).decode())
            for key, value in self.generated.items()
        }

    def ignore_changes(self) -> list[str]:
        return [f'data["{key}"]' for key in self.generated]


@dataclass(frozen=True)
class WorkloadsArgs:
    provider: k8s.Provider
    namespace: str
    """Namespace of the AssistenteDigital and its Secrets."""
    definitions: list[Manifest]
    """Namespaces and CRDs (created first)."""
    operator: list[Manifest]
    """The operator's install base without its definitions."""
    secrets: list[SecretSpec]
    assistant: Manifest | None
    """The AssistenteDigital (install: operator) ..."""
    argocd_application: Manifest | None = None
    """... or Argo CD's root application (install: argocd)."""
    ready_timeout_minutes: int = 20
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """Cloud resources that must exist first (node pools, databases)."""


class ClusterWorkloads(pulumi.ComponentResource):
    """The operator, the Secrets and the AssistenteDigital (or Argo CD's root application)."""

    definitions: list[KubernetesObject]
    operator: list[KubernetesObject]
    secrets: list[KubernetesObject]
    assistant: KubernetesObject | None
    argocd_application: KubernetesObject | None

    def __init__(
        self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("assistente:kubernetes:ClusterWorkloads", name, None, opts)
        base = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )

        def after(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions.merge(
                base, pulumi.ResourceOptions(depends_on=[*args.depends_on, *resources])
            )

        self.definitions = [KubernetesObject(obj, base) for obj in args.definitions]
        self.operator = [KubernetesObject(obj, after(*self.definitions)) for obj in args.operator]
        self.secrets = [
            KubernetesObject(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": secret.name,
                        "namespace": args.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "pulumi"},
                    },
                    "type": secret.type,
                    # Only what there is: the provider drops an empty map from its state, and
                    # would then see one in the next run's inputs as a change.
                    **({"stringData": dict(secret.string_data)} if secret.string_data else {}),
                    **({"data": secret.data()} if secret.generated else {}),
                },
                pulumi.ResourceOptions.merge(
                    after(*self.definitions),
                    pulumi.ResourceOptions(ignore_changes=secret.ignore_changes()),
                ),
                secret_fields=("stringData", "data"),
            )
            for secret in args.secrets
        ]
        timeout = f"{args.ready_timeout_minutes}m"
        self.assistant = (
            KubernetesObject(
                args.assistant,
                pulumi.ResourceOptions.merge(
                    after(*self.definitions, *self.operator, *self.secrets),
                    pulumi.ResourceOptions(
                        custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)
                    ),
                ),
            )
            if args.assistant is not None
            else None
        )
        self.argocd_application = (
            KubernetesObject(args.argocd_application, after(*self.definitions, *self.secrets))
            if args.argocd_application is not None
            else None
        )
        self.register_outputs({})
