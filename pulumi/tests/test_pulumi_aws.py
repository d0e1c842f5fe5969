"""AWS stack under mocks: what a court relies on for availability, privacy and encryption."""

from __future__ import annotations

import ipaddress

import pytest
from conftest import (
    TEST_SECRETS,
    Deploy,
    Recorder,
    example_config,
    is_secret,
    revealed,
    run_program,
)

KMS_ARN = "arn:aws:kms:sa-east-1:111111111111:key/aws-kms"


@pytest.fixture(scope="module")
def aws_stack() -> Recorder:
    return run_program("aws", example_config("aws"))


def test_eks_spreads_app_and_data_node_groups_over_three_private_subnets(
    aws_stack: Recorder,
) -> None:
    subnets = {r.name: r.inputs for r in aws_stack.of_type("aws:ec2/subnet:Subnet")}
    private_ids = {f"{name}-id" for name in subnets if "-private-" in name}
    assert len(private_ids) == 3
    assert len({subnets[n]["availabilityZone"] for n in subnets if "-private-" in n}) == 3
    groups = {
        r.inputs["labels"]["assistente.digital/pool"]: r.inputs
        for r in aws_stack.of_type("aws:eks/nodeGroup:NodeGroup")
    }
    assert set(groups) == {"app", "data"}
    for group in groups.values():
        assert group["scalingConfig"]["desiredSize"] == 3
        assert group["scalingConfig"]["minSize"] == 3
        assert set(group["subnetIds"]) == private_ids
    cluster = aws_stack.one("aws:eks/cluster:Cluster").inputs
    assert set(cluster["vpcConfig"]["subnetIds"]) == private_ids
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == ["200.198.0.0/24"]
    assert cluster["encryptionConfig"] == {
        "provider": {"keyArn": KMS_ARN},
        "resources": ["secrets"],
    }


def test_private_subnets_route_out_through_nat_and_never_map_public_ips(
    aws_stack: Recorder,
) -> None:
    for subnet in aws_stack.of_type("aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
        assert ipaddress.IPv4Network(subnet.inputs["cidrBlock"]).subnet_of(
            ipaddress.IPv4Network("10.40.0.0/16")
        )
    private_tables = [
        r for r in aws_stack.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in r.name
    ]
    assert len(private_tables) == 3
    for table in private_tables:
        (route,) = table.inputs["routes"]
        assert "natGatewayId" in route
        assert "gatewayId" not in route
    assert len(aws_stack.of_type("aws:ec2/natGateway:NatGateway")) == 3


def test_rds_is_multi_az_encrypted_private_with_a_read_replica(aws_stack: Recorder) -> None:
    primary = aws_stack.one("aws:rds/instance:Instance", "aws-pg").inputs
    assert primary["multiAz"] is True
    assert primary["storageEncrypted"] is True
    assert primary["kmsKeyId"] == KMS_ARN
    assert primary["publiclyAccessible"] is False
    assert primary["deletionProtection"] is True
    assert primary["backupRetentionPeriod"] == 14
    assert is_secret(primary["password"])
    assert revealed(primary["password"]) == TEST_SECRETS["postgresPassword"]
    replica = aws_stack.one("aws:rds/instance:Instance", "aws-pg-replica-0").inputs
    assert replica["replicateSourceDb"] == primary["identifier"]
    assert replica["storageEncrypted"] is True
    assert replica["publiclyAccessible"] is False
    security = aws_stack.one("aws:ec2/securityGroup:SecurityGroup", "aws-pg").inputs
    assert security["ingress"] == [
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.40.0.0/16"]}
    ]


def test_elasticache_has_a_replica_automatic_failover_and_encryption(aws_stack: Recorder) -> None:
    group = aws_stack.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert group["numCacheClusters"] == 2  # primary + one replica
    assert group["automaticFailoverEnabled"] is True
    assert group["multiAzEnabled"] is True
    assert group["atRestEncryptionEnabled"] is True
    assert group["kmsKeyId"] == KMS_ARN
    assert group["transitEncryptionEnabled"] is True
    assert is_secret(group["authToken"])


def test_secrets_manager_holds_every_secret_the_resource_refers_to(aws_stack: Recorder) -> None:
    secrets = {
        r.inputs["name"]: r.inputs for r in aws_stack.of_type("aws:secretsmanager/secret:Secret")
    }
    assert set(secrets) == {
        "ad-tjxx-prod/tjxx-postgres",
        "ad-tjxx-prod/tjxx-redis",
        "ad-tjxx-prod/tjxx-datajud",
    }
    assert all(secret["kmsKeyId"] == KMS_ARN for secret in secrets.values())
    for version in aws_stack.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert is_secret(version.inputs["secretString"])


def test_kms_key_rotates_and_everything_taggable_is_tagged(aws_stack: Recorder) -> None:
    assert aws_stack.one("aws:kms/key:Key").inputs["enableKeyRotation"] is True
    tagged = [r for r in aws_stack.resources if r.typ.startswith("aws:") and "tags" in r.inputs]
    assert len(tagged) > 20
    for resource in tagged:
        tags = resource.inputs["tags"]
        assert tags["court"] == "tjxx", resource.name
        assert tags["environment"] == "prod", resource.name
        assert tags["cost-center"] == "ti-tjxx", resource.name


def test_more_read_replicas_and_bigger_pools_follow_the_config(deploy: Deploy) -> None:
    config = example_config("aws")
    config["postgres"] = {**config["postgres"], "readReplicas": 2}
    config["cluster"] = {**config["cluster"], "appPool": {"nodeCount": 6, "maxCount": 12}}
    recorder = deploy("aws", config)
    replicas = [r for r in recorder.of_type("aws:rds/instance:Instance") if "replica" in r.name]
    assert len(replicas) == 2
    app = next(r for r in recorder.of_type("aws:eks/nodeGroup:NodeGroup") if r.name == "aws-app")
    assert app.inputs["scalingConfig"] == {"desiredSize": 6, "minSize": 6, "maxSize": 12}
    assert app.inputs["instanceTypes"] == ["m6i.xlarge"]  # the default when unset
