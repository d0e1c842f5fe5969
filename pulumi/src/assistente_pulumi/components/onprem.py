"""On-prem: a cluster that already exists, reached through a kubeconfig. PostgreSQL runs in it
through CloudNativePG and Redis with Sentinel, both rendered by the operator from the resource
(or PostgreSQL is an existing server the stack's config names)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from assistente_pulumi.components.platform import PostgresEndpoint, RedisEndpoint
from assistente_pulumi.config import StackConfig


class OnPremPlatform(pulumi.ComponentResource):
    """The existing cluster's provider; the court's own servers keep their secrets elsewhere."""

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("assistente:onprem:Platform", name, None, opts)
        self._k8s = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=config.kubeconfig,
            context=config.kube_context,
            opts=pulumi.ResourceOptions(parent=self),
        )
        external = config.external_postgres
        password = config.postgres_password
        self._postgres = (
            PostgresEndpoint(
                host=pulumi.Output.from_input(external.host),
                read_host=pulumi.Output.from_input(external.read_only_host or external.host),
                port=external.port,
                dbname=external.dbname,
                user=external.user,
                password=pulumi.Output.secret(password.get_secret_value()),
            )
            if external is not None and password is not None
            else None
        )
        self.register_outputs({})

    @property
    def k8s_provider(self) -> k8s.Provider:
        return self._k8s

    @property
    def postgres(self) -> PostgresEndpoint | None:
        return self._postgres

    @property
    def redis(self) -> RedisEndpoint | None:
        return None

    @property
    def ready(self) -> list[pulumi.Resource]:
        return []

    def store_secret(self, name: str, data: Mapping[str, pulumi.Input[str]]) -> None:
        """On-prem courts keep the originals in their own vault; the cluster copy is enough."""
