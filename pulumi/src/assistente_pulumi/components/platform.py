"""What a stack's cloud part hands to the part that installs on the cluster."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import pulumi
import pulumi_kubernetes as k8s

from assistente_pulumi.config import StackConfig

# Node label of the two pools (app: stateless workloads; data: stateful ones and monitoring).
POOL_LABEL: Final = "assistente.digital/pool"


@dataclass(frozen=True)
class PostgresEndpoint:
    """A managed PostgreSQL: the HA primary and the first read replica."""

    host: pulumi.Output[str]
    read_host: pulumi.Output[str]
    port: pulumi.Input[int]
    dbname: str
    user: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class RedisEndpoint:
    """A managed Redis with a replica and automatic failover."""

    host: pulumi.Output[str]
    port: pulumi.Input[int]
    password: pulumi.Output[str]
    tls: bool


class Platform(Protocol):
    """A cluster, and optionally managed data stores and a secret store, for one stack."""

    @property
    def k8s_provider(self) -> k8s.Provider: ...

    @property
    def postgres(self) -> PostgresEndpoint | None: ...

    @property
    def redis(self) -> RedisEndpoint | None: ...

    @property
    def ready(self) -> list[pulumi.Resource]:
        """Resources the cluster's workloads wait for (node pools, databases)."""
        ...

    def store_secret(self, name: str, data: Mapping[str, pulumi.Input[str]]) -> None:
        """Keeps a copy of a Kubernetes Secret in the cloud's secret store (if it has one)."""
        ...


@dataclass(frozen=True)
class SubnetPlan:
    """Address ranges carved from the VPC/VNet range, one per zone where it matters."""

    private: list[str]
    """Nodes and pods (one per zone)."""
    public: list[str]
    """Load balancers and NAT gateways (one per zone)."""
    services: list[str]
    """Spare ranges for managed services (database delegation, private endpoints)."""


def plan_subnets(cidr: str, zones: int = 3) -> SubnetPlan:
    """Splits ``cidr`` in eighths: ``zones`` private ranges, then small public and service ones."""
    network = ipaddress.IPv4Network(cidr)
    eighths = list(network.subnets(prefixlen_diff=3))
    private = [str(net) for net in eighths[:zones]]
    # The next eighth is cut in eight again: public ranges first, then service ranges.
    small = [str(net) for net in eighths[zones].subnets(prefixlen_diff=3)]
    return SubnetPlan(private=private, public=small[:zones], services=small[zones:])


def json_secret(data: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    """A secret store entry: the Secret's keys as one JSON document, marked secret."""
    return pulumi.Output.secret(pulumi.Output.all(**dict(data)).apply(json.dumps))


class ManagedPlatform(pulumi.ComponentResource):
    """What the three cloud platforms share: naming, the new cluster's Kubernetes provider and
    the endpoints of the managed data stores. Subclasses set ``kubeconfig`` and both endpoints,
    then call ``_connect``."""

    kubeconfig: pulumi.Output[str]
    _postgres_endpoint: PostgresEndpoint
    _redis_endpoint: RedisEndpoint

    def __init__(
        self, cloud: str, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None
    ) -> None:
        super().__init__(f"assistente:{cloud}:Platform", name, None, opts)
        assert config.region is not None  # required on the clouds by the config
        self._config = config
        self._region: str = config.region
        self._prefix = config.name_prefix
        self._tags = config.all_tags

    def _admin_password(self) -> pulumi.Output[str]:
        password = self._config.postgres_password
        assert password is not None  # required on the clouds by the config
        return pulumi.Output.secret(password.get_secret_value())

    def _postgres_at(
        self, host: pulumi.Output[str], read_host: pulumi.Output[str]
    ) -> PostgresEndpoint:
        """The endpoint of the managed server: writes to ``host``, reads to ``read_host``."""
        settings = self._config.postgres
        return PostgresEndpoint(
            host=host,
            read_host=read_host,
            port=5432,
            dbname=settings.database,
            user=settings.user,
            password=self._admin_password(),
        )

    def _connect(self, name: str) -> None:
        self._k8s = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, opts=pulumi.ResourceOptions(parent=self)
        )

    @property
    def k8s_provider(self) -> k8s.Provider:
        return self._k8s

    @property
    def postgres(self) -> PostgresEndpoint:
        return self._postgres_endpoint

    @property
    def redis(self) -> RedisEndpoint:
        return self._redis_endpoint
