"""Azure: AKS with app and data pools over three zones, PostgreSQL Flexible Server with
zone-redundant HA and read replicas, Azure Cache for Redis (Premium, zonal, with a replica),
reached through private networking only; Key Vault keeps the Secrets the cluster receives."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

import pulumi
import pulumi_azure_native as azure

from assistente_pulumi.components.platform import (
    POOL_LABEL,
    ManagedPlatform,
    RedisEndpoint,
    json_secret,
    plan_subnets,
)
from assistente_pulumi.config import NodePool, StackConfig

ZONES: Final = ["1", "2", "3"]
DEFAULT_APP_VM: Final = "Standard_D4s_v5"
DEFAULT_DATA_VM: Final = "Standard_E4s_v5"
DEFAULT_POSTGRES_SKU: Final = "Standard_D4ds_v5"
DEFAULT_REDIS_SKU: Final = "P1"


class AzurePlatform(ManagedPlatform):
    """Everything the assistant needs around it on Azure, for one court and environment."""

    resource_group: azure.resources.ResourceGroup
    vnet: azure.network.VirtualNetwork
    cluster: azure.containerservice.ManagedCluster
    data_pool: azure.containerservice.AgentPool
    database: azure.dbforpostgresql.Server
    read_replicas: list[azure.dbforpostgresql.Server]
    cache: azure.redis.Redis
    vault: azure.keyvault.Vault
    private_endpoints: dict[str, azure.network.PrivateEndpoint]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("azure", name, config, opts)
        self._azure = azure.Provider(
            f"{name}-azure", location=config.region, opts=pulumi.ResourceOptions(parent=self)
        )
        self._opts = pulumi.ResourceOptions(parent=self, provider=self._azure)
        self.private_endpoints = {}
        self.resource_group = azure.resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=f"rg-{self._prefix}",
            location=self._region,
            tags=self._tags,
            opts=self._opts,
        )
        self._rg = self.resource_group.name
        self._network(name)
        self._kubernetes(name)
        self._key_vault(name)
        self._postgres(name)
        self._redis(name)
        self._connect(name)
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "postgresServer": self.database.fully_qualified_domain_name,
                "redisHost": self.cache.host_name,
                "keyVault": self.vault.name,
            }
        )

    # --- network ----------------------------------------------------------------------------

    def _network(self, name: str) -> None:
        plan = plan_subnets(self._config.network.cidr, 1)
        self.vnet = azure.network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=self._rg,
            virtual_network_name=f"vnet-{self._prefix}",
            location=self._region,
            address_space={"address_prefixes": [self._config.network.cidr]},
            tags=self._tags,
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(ignore_changes=["subnets"])
            ),
        )
        self.nodes_subnet = azure.network.Subnet(
            f"{name}-nodes",
            resource_group_name=self._rg,
            virtual_network_name=self.vnet.name,
            subnet_name="nodes",
            address_prefix=plan.private[0],
            default_outbound_access=False,
            opts=self._opts,
        )
        # PostgreSQL Flexible Server joins the VNet through a subnet delegated to it.
        self.postgres_subnet = azure.network.Subnet(
            f"{name}-postgres",
            resource_group_name=self._rg,
            virtual_network_name=self.vnet.name,
            subnet_name="postgres",
            address_prefix=plan.services[0],
            default_outbound_access=False,
            delegations=[
                {
                    "name": "postgres",
                    "service_name": "Microsoft.DBforPostgreSQL/flexibleServers",
                }
            ],
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(depends_on=[self.nodes_subnet])
            ),
        )
        self.endpoints_subnet = azure.network.Subnet(
            f"{name}-endpoints",
            resource_group_name=self._rg,
            virtual_network_name=self.vnet.name,
            subnet_name="private-endpoints",
            address_prefix=plan.services[1],
            default_outbound_access=False,
            private_endpoint_network_policies="Enabled",
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(depends_on=[self.postgres_subnet])
            ),
        )

    def _private_zone(self, name: str, zone: str) -> azure.privatedns.PrivateZone:
        private_zone = azure.privatedns.PrivateZone(
            f"{name}-zone",
            resource_group_name=self._rg,
            private_zone_name=zone,
            location="Global",
            tags=self._tags,
            opts=self._opts,
        )
        azure.privatedns.VirtualNetworkLink(
            f"{name}-zone-link",
            resource_group_name=self._rg,
            private_zone_name=private_zone.name,
            location="Global",
            registration_enabled=False,
            virtual_network={"id": self.vnet.id},
            tags=self._tags,
            opts=self._opts,
        )
        return private_zone

    def _private_endpoint(
        self, name: str, target_id: pulumi.Input[str], group: str, zone: str
    ) -> azure.network.PrivateEndpoint:
        private_zone = self._private_zone(name, zone)
        endpoint = azure.network.PrivateEndpoint(
            f"{name}-endpoint",
            resource_group_name=self._rg,
            location=self._region,
            subnet={"id": self.endpoints_subnet.id},
            private_link_service_connections=[
                {"name": name, "private_link_service_id": target_id, "group_ids": [group]}
            ],
            tags=self._tags,
            opts=self._opts,
        )
        azure.network.PrivateDnsZoneGroup(
            f"{name}-endpoint-dns",
            resource_group_name=self._rg,
            private_endpoint_name=endpoint.name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[{"name": group, "private_dns_zone_id": private_zone.id}],
            opts=self._opts,
        )
        self.private_endpoints[group] = endpoint
        return endpoint

    # --- AKS --------------------------------------------------------------------------------

    def _kubernetes(self, name: str) -> None:
        settings = self._config.cluster

        def pool(pool_name: str, pool: NodePool, default_vm: str) -> dict[str, object]:
            return {
                "name": pool_name,
                "vm_size": pool.machine_type or default_vm,
                "count": pool.node_count,
                "min_count": pool.node_count,
                "max_count": pool.autoscaling_max,
                "enable_auto_scaling": True,
                "availability_zones": ZONES,
                "os_disk_size_gb": pool.disk_size_gb,
                "os_type": "Linux",
                "type": "VirtualMachineScaleSets",
                "vnet_subnet_id": self.nodes_subnet.id,
                "node_labels": {POOL_LABEL: pool_name},
                "enable_node_public_ip": False,
                "enable_encryption_at_host": True,
            }

        self.cluster = azure.containerservice.ManagedCluster(
            f"{name}-aks",
            resource_group_name=self._rg,
            resource_name_=f"aks-{self._prefix}",
            location=self._region,
            dns_prefix=self._prefix,
            kubernetes_version=settings.kubernetes_version,
            identity={"type": "SystemAssigned"},
            enable_rbac=True,
            agent_pool_profiles=[
                {**pool("app", settings.app_pool, DEFAULT_APP_VM), "mode": "System"}
            ],
            network_profile={
                "network_plugin": "azure",
                "network_plugin_mode": "overlay",
                "network_policy": "cilium",
                "network_dataplane": "cilium",
                "outbound_type": "loadBalancer",
            },
            api_server_access_profile={"authorized_ip_ranges": settings.api_allowed_cidrs},
            auto_upgrade_profile={"upgrade_channel": "patch"},
            sku={"name": "Base", "tier": "Standard"},
            tags=self._tags,
            opts=self._opts,
        )
        data = pool("data", settings.data_pool, DEFAULT_DATA_VM)
        data.pop("name")
        self.data_pool = azure.containerservice.AgentPool(
            f"{name}-data",
            resource_group_name=self._rg,
            resource_name_=self.cluster.name,
            agent_pool_name="data",
            mode="User",
            tags=self._tags,
            opts=self._opts,
            **data,
        )
        credentials = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=self._rg,
            resource_name=self.cluster.name,
            opts=pulumi.InvokeOutputOptions(provider=self._azure, parent=self),
        )
        self.kubeconfig = pulumi.Output.secret(
            credentials.kubeconfigs.apply(lambda items: base64.b64decode(items[0].value).decode())
        )

    # --- Key Vault --------------------------------------------------------------------------

    def _key_vault(self, name: str) -> None:
        client = azure.authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(provider=self._azure, parent=self)
        )
        self.vault = azure.keyvault.Vault(
            f"{name}-kv",
            resource_group_name=self._rg,
            vault_name=f"kv-{self._prefix}"[:24],
            location=self._region,
            properties={
                "tenant_id": client.tenant_id,
                "sku": {"family": "A", "name": "premium"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 90,
                "enable_purge_protection": True,
                "public_network_access": "Disabled",
                "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
            },
            tags=self._tags,
            opts=self._opts,
        )
        self._private_endpoint(
            f"{name}-kv", self.vault.id, "vault", "privatelink.vaultcore.azure.net"
        )

    # --- PostgreSQL Flexible Server ---------------------------------------------------------

    def _postgres(self, name: str) -> None:
        settings = self._config.postgres
        zone = self._private_zone(
            f"{name}-pg", f"{self._prefix}.private.postgres.database.azure.com"
        )
        network = {
            "delegated_subnet_resource_id": self.postgres_subnet.id,
            "private_dns_zone_arm_resource_id": zone.id,
            "public_network_access": "Disabled",
        }
        sku = {"name": settings.machine_type or DEFAULT_POSTGRES_SKU, "tier": "GeneralPurpose"}
        self.database = azure.dbforpostgresql.Server(
            f"{name}-pg",
            resource_group_name=self._rg,
            server_name=f"pg-{self._prefix}",
            location=self._region,
            version=settings.version,
            administrator_login=settings.user,
            administrator_login_password=self._admin_password(),
            sku=sku,
            storage={"storage_size_gb": settings.storage_gb, "auto_grow": "Enabled"},
            backup={
                "backup_retention_days": settings.backup_retention_days,
                "geo_redundant_backup": "Enabled",
            },
            high_availability={"mode": "ZoneRedundant", "standby_availability_zone": ZONES[1]},
            availability_zone=ZONES[0],
            network=network,
            tags=self._tags,
            opts=self._opts,
        )
        azure.dbforpostgresql.Database(
            f"{name}-pg-db",
            resource_group_name=self._rg,
            server_name=self.database.name,
            database_name=settings.database,
            charset="UTF8",
            collation="pt_BR.utf8",
            opts=self._opts,
        )
        self.read_replicas = [
            azure.dbforpostgresql.Server(
                f"{name}-pg-replica-{index}",
                resource_group_name=self._rg,
                server_name=f"pg-{self._prefix}-replica-{index}",
                location=self._region,
                create_mode="Replica",
                source_server_resource_id=self.database.id,
                sku=sku,
                storage={"storage_size_gb": settings.storage_gb, "auto_grow": "Enabled"},
                availability_zone=ZONES[(index + 2) % len(ZONES)],
                network=network,
                tags=self._tags,
                opts=self._opts,
            )
            for index in range(settings.read_replicas)
        ]
        self._postgres_endpoint = self._postgres_at(
            self.database.fully_qualified_domain_name.apply(str),
            self.read_replicas[0].fully_qualified_domain_name.apply(str),
        )

    # --- Azure Cache for Redis --------------------------------------------------------------

    def _redis(self, name: str) -> None:
        settings = self._config.redis
        sku_name = settings.machine_type or DEFAULT_REDIS_SKU
        self.cache = azure.redis.Redis(
            f"{name}-redis",
            resource_group_name=self._rg,
            name=f"redis-{self._prefix}",
            location=self._region,
            sku={"name": "Premium", "family": "P", "capacity": int(sku_name.removeprefix("P"))},
            replicas_per_primary=settings.replicas,
            zones=ZONES,
            enable_non_ssl_port=False,
            minimum_tls_version="1.2",
            public_network_access="Disabled",
            redis_version="6",
            tags=self._tags,
            opts=self._opts,
        )
        self._private_endpoint(
            f"{name}-redis", self.cache.id, "redisCache", "privatelink.redis.cache.windows.net"
        )
        keys = azure.redis.list_redis_keys_output(
            name=self.cache.name,
            resource_group_name=self._rg,
            opts=pulumi.InvokeOutputOptions(provider=self._azure, parent=self),
        )
        self._redis_endpoint = RedisEndpoint(
            host=self.cache.host_name,
            port=self.cache.ssl_port,
            password=pulumi.Output.secret(keys.primary_key),
            tls=True,
        )

    # --- Platform ---------------------------------------------------------------------------

    @property
    def ready(self) -> list[pulumi.Resource]:
        return [self.cluster, self.data_pool]

    def store_secret(self, name: str, data: Mapping[str, pulumi.Input[str]]) -> None:
        azure.keyvault.Secret(
            f"{self._prefix}-{name}",
            resource_group_name=self._rg,
            vault_name=self.vault.name,
            secret_name=name,
            properties={"value": json_secret(data), "content_type": "application/json"},
            tags=self._tags,
            opts=self._opts,
        )
