"""Google Cloud stack under mocks: regional HA, private service access and Secret Manager."""

from __future__ import annotations

import pytest
from conftest import Recorder, example_config, is_secret, run_program


@pytest.fixture(scope="module")
def gcp_stack() -> Recorder:
    return run_program("gcp", example_config("gcp"))


def test_gke_is_regional_private_and_encrypts_secrets_with_kms(gcp_stack: Recorder) -> None:
    cluster = gcp_stack.one("gcp:container/cluster:Cluster").inputs
    assert cluster["location"] == "southamerica-east1"  # a region, not a zone
    assert cluster["privateClusterConfig"]["enablePrivateNodes"] is True
    assert (
        cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"][0]["cidrBlock"] == "200.198.0.0/24"
    )
    assert cluster["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": "gcp-key-id"}
    assert cluster["removeDefaultNodePool"] is True


def test_node_pools_give_three_app_and_three_data_nodes(gcp_stack: Recorder) -> None:
    pools = {
        r.inputs["name"]: r.inputs for r in gcp_stack.of_type("gcp:container/nodePool:NodePool")
    }
    assert set(pools) == {"app", "data"}
    for name, pool in pools.items():
        # Regional pools count per zone: one in each of the three zones.
        assert pool["nodeCount"] == 1
        assert pool["location"] == "southamerica-east1"
        assert pool["nodeConfig"]["labels"] == {"assistente.digital/pool": name}


def test_cloud_sql_is_regional_private_with_a_read_replica(gcp_stack: Recorder) -> None:
    primary = gcp_stack.one("gcp:sql/databaseInstance:DatabaseInstance", "gcp-pg").inputs
    settings = primary["settings"]
    assert settings["availabilityType"] == "REGIONAL"
    assert settings["ipConfiguration"]["ipv4Enabled"] is False
    assert settings["ipConfiguration"]["privateNetwork"] == "gcp-vpc-id"
    assert settings["ipConfiguration"]["sslMode"] == "ENCRYPTED_ONLY"
    assert settings["backupConfiguration"]["pointInTimeRecoveryEnabled"] is True
    replica = gcp_stack.one("gcp:sql/databaseInstance:DatabaseInstance", "gcp-pg-replica-0").inputs
    assert replica["masterInstanceName"] == primary["name"]
    assert replica["settings"]["ipConfiguration"]["ipv4Enabled"] is False
    user = gcp_stack.one("gcp:sql/user:User").inputs
    assert is_secret(user["password"])


def test_memorystore_is_standard_tier_with_a_replica_over_private_access(
    gcp_stack: Recorder,
) -> None:
    cache = gcp_stack.one("gcp:redis/instance:Instance").inputs
    assert cache["tier"] == "STANDARD_HA"
    assert cache["replicaCount"] == 1
    assert cache["connectMode"] == "PRIVATE_SERVICE_ACCESS"
    assert cache["authEnabled"] is True
    assert cache["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    peering = gcp_stack.one("gcp:servicenetworking/connection:Connection").inputs
    assert peering["service"] == "servicenetworking.googleapis.com"
    address = gcp_stack.one("gcp:compute/globalAddress:GlobalAddress").inputs
    assert address["purpose"] == "VPC_PEERING"


def test_secret_manager_holds_the_resource_secrets(gcp_stack: Recorder) -> None:
    secrets = {r.inputs["secretId"] for r in gcp_stack.of_type("gcp:secretmanager/secret:Secret")}
    assert secrets == {
        "ad-tjxx-prod-tjxx-postgres",
        "ad-tjxx-prod-tjxx-redis",
        "ad-tjxx-prod-tjxx-datajud",
    }
    for version in gcp_stack.of_type("gcp:secretmanager/secretVersion:SecretVersion"):
        assert is_secret(version.inputs["secretData"])
