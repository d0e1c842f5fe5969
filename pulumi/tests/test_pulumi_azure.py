"""Azure stack under mocks: zone redundancy, private endpoints and Key Vault."""

from __future__ import annotations

import pytest
from conftest import Recorder, example_config, is_secret, run_program


@pytest.fixture(scope="module")
def azure_stack() -> Recorder:
    return run_program("azure", example_config("azure"))


def test_aks_runs_app_and_data_pools_over_three_zones(azure_stack: Recorder) -> None:
    cluster = azure_stack.one("azure-native:containerservice:ManagedCluster").inputs
    (app,) = cluster["agentPoolProfiles"]
    data = azure_stack.one("azure-native:containerservice:AgentPool").inputs
    for pool, name in ((app, "app"), (data, "data")):
        assert pool["count"] == 3
        assert pool["minCount"] == 3
        assert pool["availabilityZones"] == ["1", "2", "3"]
        assert pool["enableNodePublicIP"] is False
        assert pool["enableEncryptionAtHost"] is True
        assert pool["nodeLabels"] == {"assistente.digital/pool": name}
    assert cluster["apiServerAccessProfile"]["authorizedIPRanges"] == ["200.198.0.0/24"]
    assert cluster["networkProfile"]["networkPolicy"] == "cilium"


def test_postgres_is_zone_redundant_private_with_a_read_replica(azure_stack: Recorder) -> None:
    primary = azure_stack.one("azure-native:dbforpostgresql:Server", "azure-pg").inputs
    assert primary["highAvailability"]["mode"] == "ZoneRedundant"
    assert primary["highAvailability"]["standbyAvailabilityZone"] != primary["availabilityZone"]
    assert primary["network"]["publicNetworkAccess"] == "Disabled"
    assert primary["network"]["delegatedSubnetResourceId"] == "azure-postgres-id"
    assert primary["backup"]["geoRedundantBackup"] == "Enabled"
    assert is_secret(primary["administratorLoginPassword"])
    replica = azure_stack.one("azure-native:dbforpostgresql:Server", "azure-pg-replica-0").inputs
    assert replica["createMode"] == "Replica"
    assert replica["sourceServerResourceId"] == "azure-pg-id"
    assert replica["network"]["publicNetworkAccess"] == "Disabled"
    subnet = azure_stack.one("azure-native:network:Subnet", "azure-postgres").inputs
    assert subnet["delegations"][0]["serviceName"] == "Microsoft.DBforPostgreSQL/flexibleServers"


def test_redis_is_premium_zonal_with_a_replica_behind_a_private_endpoint(
    azure_stack: Recorder,
) -> None:
    cache = azure_stack.one("azure-native:redis:Redis").inputs
    assert cache["sku"] == {"name": "Premium", "family": "P", "capacity": 1}
    assert cache["replicasPerPrimary"] == 1
    assert cache["zones"] == ["1", "2", "3"]
    assert cache["publicNetworkAccess"] == "Disabled"
    assert cache["enableNonSslPort"] is False
    endpoints = {
        r.inputs["privateLinkServiceConnections"][0]["groupIds"][0]: r.inputs
        for r in azure_stack.of_type("azure-native:network:PrivateEndpoint")
    }
    assert set(endpoints) == {"redisCache", "vault"}
    assert all(e["subnet"]["id"] == "azure-endpoints-id" for e in endpoints.values())


def test_key_vault_is_private_and_holds_the_resource_secrets(azure_stack: Recorder) -> None:
    vault = azure_stack.one("azure-native:keyvault:Vault").inputs["properties"]
    assert vault["publicNetworkAccess"] == "Disabled"
    assert vault["enablePurgeProtection"] is True
    assert vault["enableRbacAuthorization"] is True
    secrets = {
        r.inputs["secretName"]: r.inputs
        for r in azure_stack.of_type("azure-native:keyvault:Secret")
    }
    assert set(secrets) == {"tjxx-postgres", "tjxx-redis", "tjxx-datajud"}
    for secret in secrets.values():
        properties = secret["properties"]
        # The serialiser marks the whole object secret when one of its values is.
        assert is_secret(properties) or is_secret(properties["value"])


def test_resources_carry_the_court_tags(azure_stack: Recorder) -> None:
    tagged = [
        r for r in azure_stack.resources if r.typ.startswith("azure-native:") and "tags" in r.inputs
    ]
    assert len(tagged) > 10
    assert all(r.inputs["tags"]["court"] == "tjxx" for r in tagged)
