"""Google Cloud: a regional GKE cluster (private nodes) with app and data pools, Cloud SQL for
PostgreSQL with regional HA and read replicas, Memorystore for Redis (standard tier, with a read
replica), both reached through private service access; Secret Manager keeps the Secrets the
cluster receives."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Final

import pulumi
import pulumi_gcp as gcp

from assistente_pulumi.components.platform import (
    POOL_LABEL,
    ManagedPlatform,
    RedisEndpoint,
    json_secret,
    plan_subnets,
)
from assistente_pulumi.config import NodePool, StackConfig

# A regional cluster spreads every node pool over the region's three zones; node counts are
# per zone, so a pool of N nodes runs ceil(N / 3) in each zone.
ZONES: Final = 3
DEFAULT_APP_MACHINE: Final = "e2-standard-4"
DEFAULT_DATA_MACHINE: Final = "n2-highmem-4"
DEFAULT_POSTGRES_TIER: Final = "db-custom-2-7680"
PODS_RANGE: Final = "pods"
SERVICES_RANGE: Final = "services"


def nodes_per_zone(pool: NodePool) -> int:
    return math.ceil(pool.node_count / ZONES)


class GcpPlatform(ManagedPlatform):
    """Everything the assistant needs around it on Google Cloud, for one court and environment."""

    network: gcp.compute.Network
    subnetwork: gcp.compute.Subnetwork
    private_access: gcp.servicenetworking.Connection
    kms_key: gcp.kms.CryptoKey
    cluster: gcp.container.Cluster
    node_pools: dict[str, gcp.container.NodePool]
    database: gcp.sql.DatabaseInstance
    read_replicas: list[gcp.sql.DatabaseInstance]
    cache: gcp.redis.Instance
    secrets: dict[str, gcp.secretmanager.Secret]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gcp", name, config, opts)
        assert config.gcp_project is not None
        self._project = config.gcp_project
        self._labels = {
            key.replace("_", "-").lower(): value for key, value in config.all_tags.items()
        }
        self._gcp = gcp.Provider(
            f"{name}-gcp",
            project=config.gcp_project,
            region=config.region,
            default_labels=self._labels,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._opts = pulumi.ResourceOptions(parent=self, provider=self._gcp)
        self.secrets = {}
        self._network(name)
        self._kms(name)
        self._kubernetes(name)
        self._postgres(name)
        self._redis(name)
        self._connect(name)
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "postgresPrivateIp": self.database.private_ip_address,
                "redisHost": self.cache.host,
            }
        )

    # --- network and private service access -------------------------------------------------

    def _network(self, name: str) -> None:
        plan = plan_subnets(self._config.network.cidr, 3)
        self.network = gcp.compute.Network(
            f"{name}-vpc",
            name=f"vpc-{self._prefix}",
            auto_create_subnetworks=False,
            opts=self._opts,
        )
        self.subnetwork = gcp.compute.Subnetwork(
            f"{name}-nodes",
            name=f"nodes-{self._prefix}",
            network=self.network.id,
            region=self._region,
            ip_cidr_range=plan.private[0],
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": plan.private[1]},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": plan.private[2]},
            ],
            opts=self._opts,
        )
        router = gcp.compute.Router(
            f"{name}-router",
            name=f"router-{self._prefix}",
            network=self.network.id,
            region=self._region,
            opts=self._opts,
        )
        gcp.compute.RouterNat(
            f"{name}-nat",
            name=f"nat-{self._prefix}",
            router=router.name,
            region=self._region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            opts=self._opts,
        )
        # Cloud SQL and Memorystore live in Google's network, peered to ours on this range.
        reserved = gcp.compute.GlobalAddress(
            f"{name}-services",
            name=f"services-{self._prefix}",
            network=self.network.id,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=20,
            opts=self._opts,
        )
        self.private_access = gcp.servicenetworking.Connection(
            f"{name}-private-access",
            network=self.network.id,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[reserved.name],
            opts=self._opts,
        )

    # --- KMS: application-layer encryption of Kubernetes Secrets ----------------------------

    def _kms(self, name: str) -> None:
        ring = gcp.kms.KeyRing(
            f"{name}-keyring", name=f"kr-{self._prefix}", location=self._region, opts=self._opts
        )
        self.kms_key = gcp.kms.CryptoKey(
            f"{name}-key",
            name=f"gke-secrets-{self._prefix}",
            key_ring=ring.id,
            rotation_period="7776000s",
            opts=pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(protect=True)),
        )
        project = gcp.organizations.get_project_output(
            project_id=self._project,
            opts=pulumi.InvokeOutputOptions(provider=self._gcp, parent=self),
        )
        self._kms_grant = gcp.kms.CryptoKeyIAMMember(
            f"{name}-key-gke",
            crypto_key_id=self.kms_key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=project.number.apply(
                lambda number: (
                    f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
                )
            ),
            opts=self._opts,
        )

    # --- GKE --------------------------------------------------------------------------------

    def _kubernetes(self, name: str) -> None:
        settings = self._config.cluster
        self.cluster = gcp.container.Cluster(
            f"{name}-gke",
            name=f"gke-{self._prefix}",
            location=self._region,
            network=self.network.id,
            subnetwork=self.subnetwork.id,
            remove_default_node_pool=True,
            initial_node_count=1,
            min_master_version=settings.kubernetes_version,
            release_channel={"channel": "REGULAR"},
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": PODS_RANGE,
                "services_secondary_range_name": SERVICES_RANGE,
            },
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": False,
                "master_ipv4_cidr_block": "172.16.0.0/28",
            },
            master_authorized_networks_config={
                "cidr_blocks": [
                    {"cidr_block": cidr, "display_name": f"permitido-{index}"}
                    for index, cidr in enumerate(settings.api_allowed_cidrs)
                ]
            },
            database_encryption={"state": "ENCRYPTED", "key_name": self.kms_key.id},
            datapath_provider="ADVANCED_DATAPATH",
            workload_identity_config={"workload_pool": f"{self._project}.svc.id.goog"},
            deletion_protection=True,
            resource_labels=self._labels,
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(depends_on=[self._kms_grant])
            ),
        )
        pools: dict[str, tuple[NodePool, str]] = {
            "app": (settings.app_pool, DEFAULT_APP_MACHINE),
            "data": (settings.data_pool, DEFAULT_DATA_MACHINE),
        }
        self.node_pools = {
            pool: gcp.container.NodePool(
                f"{name}-{pool}",
                name=pool,
                cluster=self.cluster.id,
                location=self._region,
                node_count=nodes_per_zone(pool_settings),
                autoscaling={
                    "min_node_count": nodes_per_zone(pool_settings),
                    "max_node_count": math.ceil(pool_settings.autoscaling_max / ZONES),
                },
                management={"auto_repair": True, "auto_upgrade": True},
                node_config={
                    "machine_type": pool_settings.machine_type or default,
                    "disk_size_gb": pool_settings.disk_size_gb,
                    "disk_type": "pd-balanced",
                    "labels": {POOL_LABEL: pool},
                    "resource_labels": self._labels,
                    "shielded_instance_config": {
                        "enable_secure_boot": True,
                        "enable_integrity_monitoring": True,
                    },
                    "workload_metadata_config": {"mode": "GKE_METADATA"},
                    "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                },
                opts=self._opts,
            )
            for pool, (pool_settings, default) in pools.items()
        }
        cluster = self.cluster
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.endpoint, cluster.master_auth.cluster_ca_certificate, cluster.name
            ).apply(lambda args: _kubeconfig(str(args[0]), str(args[1]), str(args[2])))
        )

    # --- Cloud SQL for PostgreSQL ------------------------------------------------------------

    def _postgres(self, name: str) -> None:
        settings = self._config.postgres
        ip_configuration = {
            "ipv4_enabled": False,
            "private_network": self.network.id,
            "ssl_mode": "ENCRYPTED_ONLY",
        }
        tier = settings.machine_type or DEFAULT_POSTGRES_TIER
        after_peering = pulumi.ResourceOptions.merge(
            self._opts, pulumi.ResourceOptions(depends_on=[self.private_access])
        )
        self.database = gcp.sql.DatabaseInstance(
            f"{name}-pg",
            name=f"pg-{self._prefix}",
            region=self._region,
            database_version=f"POSTGRES_{settings.version}",
            deletion_protection=True,
            settings={
                "tier": tier,
                "edition": "ENTERPRISE",
                "availability_type": "REGIONAL",
                "disk_size": settings.storage_gb,
                "disk_type": "PD_SSD",
                "disk_autoresize": True,
                "ip_configuration": ip_configuration,
                "backup_configuration": {
                    "enabled": True,
                    "point_in_time_recovery_enabled": True,
                    "backup_retention_settings": {
                        "retained_backups": settings.backup_retention_days,
                        "retention_unit": "COUNT",
                    },
                },
                "user_labels": self._labels,
            },
            opts=after_peering,
        )
        gcp.sql.Database(
            f"{name}-pg-db", name=settings.database, instance=self.database.name, opts=self._opts
        )
        gcp.sql.User(
            f"{name}-pg-user",
            name=settings.user,
            instance=self.database.name,
            password=self._admin_password(),
            opts=self._opts,
        )
        self.read_replicas = [
            gcp.sql.DatabaseInstance(
                f"{name}-pg-replica-{index}",
                name=f"pg-{self._prefix}-replica-{index}",
                region=self._region,
                database_version=f"POSTGRES_{settings.version}",
                master_instance_name=self.database.name,
                replica_configuration={"failover_target": False},
                deletion_protection=True,
                settings={
                    "tier": tier,
                    "edition": "ENTERPRISE",
                    "availability_type": "ZONAL",
                    "disk_type": "PD_SSD",
                    "disk_autoresize": True,
                    "ip_configuration": ip_configuration,
                    "user_labels": self._labels,
                },
                opts=after_peering,
            )
            for index in range(settings.read_replicas)
        ]
        self._postgres_endpoint = self._postgres_at(
            self.database.private_ip_address, self.read_replicas[0].private_ip_address
        )

    # --- Memorystore for Redis ---------------------------------------------------------------

    def _redis(self, name: str) -> None:
        settings = self._config.redis
        self.cache = gcp.redis.Instance(
            f"{name}-redis",
            name=f"redis-{self._prefix}",
            region=self._region,
            tier="STANDARD_HA",
            memory_size_gb=settings.memory_gb,
            redis_version="REDIS_7_2",
            replica_count=settings.replicas,
            read_replicas_mode="READ_REPLICAS_ENABLED",
            connect_mode="PRIVATE_SERVICE_ACCESS",
            authorized_network=self.network.id,
            auth_enabled=True,
            transit_encryption_mode="SERVER_AUTHENTICATION",
            labels=self._labels,
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(depends_on=[self.private_access])
            ),
        )
        self._redis_endpoint = RedisEndpoint(
            host=self.cache.host,
            port=self.cache.port,
            password=pulumi.Output.secret(self.cache.auth_string),
            tls=True,
        )

    # --- Platform ---------------------------------------------------------------------------

    @property
    def ready(self) -> list[pulumi.Resource]:
        return [*self.node_pools.values()]

    def store_secret(self, name: str, data: Mapping[str, pulumi.Input[str]]) -> None:
        secret = gcp.secretmanager.Secret(
            f"{self._prefix}-{name}",
            secret_id=f"{self._prefix}-{name}",
            replication={"user_managed": {"replicas": [{"location": self._region}]}},
            labels=self._labels,
            opts=self._opts,
        )
        gcp.secretmanager.SecretVersion(
            f"{self._prefix}-{name}",
            secret=secret.id,
            secret_data=json_secret(data),
            opts=self._opts,
        )
        self.secrets[name] = secret


def _kubeconfig(endpoint: str, ca_data: str, cluster: str) -> str:
    """A kubeconfig that authenticates through gke-gcloud-auth-plugin (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "server": f"https://{endpoint}",
                        "certificate-authority-data": ca_data,
                    },
                }
            ],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
            "current-context": cluster,
            "users": [
                {
                    "name": cluster,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
        }
    )
