"""AWS: EKS with app and data node groups over three zones, RDS PostgreSQL Multi-AZ with read
replicas, ElastiCache Redis with automatic failover, all in private subnets and encrypted with
one customer-managed KMS key; Secrets Manager keeps the Secrets the cluster receives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import pulumi
import pulumi_aws as aws

from assistente_pulumi.components.platform import (
    POOL_LABEL,
    ManagedPlatform,
    RedisEndpoint,
    json_secret,
    plan_subnets,
)
from assistente_pulumi.config import NodePool, StackConfig

ZONES: Final = 3
DEFAULT_APP_INSTANCE: Final = "m6i.xlarge"
DEFAULT_DATA_INSTANCE: Final = "r6i.xlarge"
DEFAULT_POSTGRES_CLASS: Final = "db.r6g.large"
DEFAULT_REDIS_NODE: Final = "cache.r6g.large"


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


class AwsPlatform(ManagedPlatform):
    """Everything the assistant needs around it on AWS, for one court and environment."""

    vpc: aws.ec2.Vpc
    private_subnets: list[aws.ec2.Subnet]
    kms_key: aws.kms.Key
    cluster: aws.eks.Cluster
    node_groups: dict[str, aws.eks.NodeGroup]
    database: aws.rds.Instance
    read_replicas: list[aws.rds.Instance]
    cache: aws.elasticache.ReplicationGroup
    secrets: dict[str, aws.secretsmanager.Secret]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aws", name, config, opts)
        self._aws = aws.Provider(
            f"{name}-aws", region=config.region, opts=pulumi.ResourceOptions(parent=self)
        )
        self._opts = pulumi.ResourceOptions(parent=self, provider=self._aws)
        self.secrets = {}

        self.kms_key = aws.kms.Key(
            f"{name}-kms",
            description=f"Assistente Digital {self._prefix}: dados em repouso",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._tags,
            opts=self._opts,
        )
        aws.kms.Alias(
            f"{name}-kms-alias",
            name=f"alias/{self._prefix}",
            target_key_id=self.kms_key.key_id,
            opts=self._opts,
        )
        self._network(name)
        self._kubernetes(name)
        self._postgres(name)
        self._redis(name)
        self._connect(name)
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "postgresEndpoint": self.database.address,
                "redisEndpoint": self.cache.primary_endpoint_address,
            }
        )

    # --- network: one private and one public subnet per zone, a NAT gateway per zone --------

    def _network(self, name: str) -> None:
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(provider=self._aws, parent=self)
        )
        plan = plan_subnets(self._config.network.cidr, ZONES)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=self._config.network.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**self._tags, "Name": self._prefix},
            opts=self._opts,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=self._tags, opts=self._opts
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=self._tags,
            opts=self._opts,
        )
        self.private_subnets = []
        for index in range(ZONES):
            zone = zones.names.apply(lambda names, i=index: names[i])
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=self.vpc.id,
                cidr_block=plan.public[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**self._tags, "kubernetes.io/role/elb": "1"},
                opts=self._opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=self._opts,
            )
            address = aws.ec2.Eip(
                f"{name}-nat-{index}", domain="vpc", tags=self._tags, opts=self._opts
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{index}",
                subnet_id=public.id,
                allocation_id=address.id,
                tags=self._tags,
                opts=self._opts,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=plan.private[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**self._tags, "kubernetes.io/role/internal-elb": "1"},
                opts=self._opts,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{index}",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=self._tags,
                opts=self._opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=self._opts,
            )
            self.private_subnets.append(private)

    def _security_group(self, name: str, port: int, description: str) -> aws.ec2.SecurityGroup:
        """Reachable on ``port`` from inside the VPC only."""
        return aws.ec2.SecurityGroup(
            name,
            vpc_id=self.vpc.id,
            description=description,
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": port,
                    "to_port": port,
                    "cidr_blocks": [self._config.network.cidr],
                }
            ],
            tags=self._tags,
            opts=self._opts,
        )

    # --- EKS ----------------------------------------------------------------------------------

    def _kubernetes(self, name: str) -> None:
        settings = self._config.cluster
        cluster_role = aws.iam.Role(
            f"{name}-eks-cluster",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
            tags=self._tags,
            opts=self._opts,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-eks-cluster",
            role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=self._opts,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=self._prefix,
            role_arn=cluster_role.arn,
            version=settings.kubernetes_version,
            vpc_config={
                "subnet_ids": [subnet.id for subnet in self.private_subnets],
                "endpoint_private_access": True,
                "endpoint_public_access": True,
                "public_access_cidrs": settings.api_allowed_cidrs,
            },
            encryption_config={"provider": {"key_arn": self.kms_key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            access_config={"authentication_mode": "API"},
            tags=self._tags,
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(depends_on=[cluster_policy])
            ),
        )
        node_role = aws.iam.Role(
            f"{name}-eks-nodes",
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
            tags=self._tags,
            opts=self._opts,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-eks-nodes-{index}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=self._opts,
            )
            for index, policy in enumerate(
                (
                    "AmazonEKSWorkerNodePolicy",
                    "AmazonEKS_CNI_Policy",
                    "AmazonEC2ContainerRegistryReadOnly",
                )
            )
        ]
        pools: dict[str, tuple[NodePool, str]] = {
            "app": (settings.app_pool, DEFAULT_APP_INSTANCE),
            "data": (settings.data_pool, DEFAULT_DATA_INSTANCE),
        }
        self.node_groups = {
            pool: aws.eks.NodeGroup(
                f"{name}-{pool}",
                cluster_name=self.cluster.name,
                node_group_name=f"{self._prefix}-{pool}",
                node_role_arn=node_role.arn,
                subnet_ids=[subnet.id for subnet in self.private_subnets],
                instance_types=[settings_.machine_type or default],
                disk_size=settings_.disk_size_gb,
                scaling_config={
                    "desired_size": settings_.node_count,
                    "min_size": settings_.node_count,
                    "max_size": settings_.autoscaling_max,
                },
                update_config={"max_unavailable": 1},
                labels={POOL_LABEL: pool},
                tags=self._tags,
                opts=pulumi.ResourceOptions.merge(
                    self._opts,
                    pulumi.ResourceOptions(
                        depends_on=attachments,
                        ignore_changes=["scalingConfig.desiredSize"],
                    ),
                ),
            )
            for pool, (settings_, default) in pools.items()
        }
        cluster = self.cluster
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.endpoint, cluster.certificate_authority.data, cluster.name
            ).apply(lambda args: _kubeconfig(args[0], args[1], args[2], str(self._config.region)))
        )

    # --- RDS PostgreSQL -------------------------------------------------------------------------

    def _postgres(self, name: str) -> None:
        settings = self._config.postgres
        subnets = aws.rds.SubnetGroup(
            f"{name}-pg",
            subnet_ids=[subnet.id for subnet in self.private_subnets],
            tags=self._tags,
            opts=self._opts,
        )
        security = self._security_group(f"{name}-pg", 5432, "PostgreSQL a partir da VPC")
        parameters = aws.rds.ParameterGroup(
            f"{name}-pg",
            family=f"postgres{settings.version}",
            parameters=[{"name": "rds.force_ssl", "value": "1"}],
            tags=self._tags,
            opts=self._opts,
        )
        instance_class = settings.machine_type or DEFAULT_POSTGRES_CLASS
        self.database = aws.rds.Instance(
            f"{name}-pg",
            identifier=f"{self._prefix}-pg",
            engine="postgres",
            engine_version=settings.version,
            instance_class=instance_class,
            allocated_storage=settings.storage_gb,
            max_allocated_storage=settings.storage_gb * 4,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=self.kms_key.arn,
            multi_az=True,
            db_name=settings.database,
            username=settings.user,
            password=self._admin_password(),
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            backup_retention_period=settings.backup_retention_days,
            deletion_protection=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{self._prefix}-pg-final",
            copy_tags_to_snapshot=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self.kms_key.arn,
            auto_minor_version_upgrade=True,
            tags=self._tags,
            opts=self._opts,
        )
        self.read_replicas = [
            aws.rds.Instance(
                f"{name}-pg-replica-{index}",
                identifier=f"{self._prefix}-pg-replica-{index}",
                replicate_source_db=self.database.identifier,
                instance_class=instance_class,
                storage_type="gp3",
                storage_encrypted=True,
                kms_key_id=self.kms_key.arn,
                vpc_security_group_ids=[security.id],
                parameter_group_name=parameters.name,
                publicly_accessible=False,
                deletion_protection=True,
                skip_final_snapshot=True,
                performance_insights_enabled=True,
                performance_insights_kms_key_id=self.kms_key.arn,
                tags=self._tags,
                opts=self._opts,
            )
            for index in range(settings.read_replicas)
        ]
        self._postgres_endpoint = self._postgres_at(
            self.database.address, self.read_replicas[0].address
        )

    # --- ElastiCache Redis ------------------------------------------------------------------

    def _redis(self, name: str) -> None:
        settings = self._config.redis
        token = self._config.redis_password
        assert token is not None  # checked by the config
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-redis",
            subnet_ids=[subnet.id for subnet in self.private_subnets],
            tags=self._tags,
            opts=self._opts,
        )
        security = self._security_group(f"{name}-redis", 6379, "Redis a partir da VPC")
        self.cache = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=f"{self._prefix}-redis",
            description=f"Assistente Digital {self._prefix}: filas e sessões",
            engine="redis",
            engine_version="7.1",
            node_type=settings.machine_type or DEFAULT_REDIS_NODE,
            num_cache_clusters=1 + settings.replicas,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=self.kms_key.arn,
            transit_encryption_enabled=True,
            auth_token=pulumi.Output.secret(token.get_secret_value()),
            port=6379,
            subnet_group_name=subnets.name,
            security_group_ids=[security.id],
            snapshot_retention_limit=7,
            tags=self._tags,
            opts=self._opts,
        )
        self._redis_endpoint = RedisEndpoint(
            host=self.cache.primary_endpoint_address,
            port=6379,
            password=pulumi.Output.secret(token.get_secret_value()),
            tls=True,
        )

    # --- Platform ---------------------------------------------------------------------------

    @property
    def ready(self) -> list[pulumi.Resource]:
        return [*self.node_groups.values()]

    def store_secret(self, name: str, data: Mapping[str, pulumi.Input[str]]) -> None:
        secret = aws.secretsmanager.Secret(
            f"{self._prefix}-{name}",
            name=f"{self._prefix}/{name}",
            description=f"Secret {name} do AssistenteDigital (copiado para o cluster)",
            kms_key_id=self.kms_key.arn,
            recovery_window_in_days=30,
            tags=self._tags,
            opts=self._opts,
        )
        aws.secretsmanager.SecretVersion(
            f"{self._prefix}-{name}",
            secret_id=secret.id,
            secret_string=json_secret(data),
            opts=self._opts,
        )
        self.secrets[name] = secret


def _kubeconfig(endpoint: str, ca_data: str, cluster: str, region: str) -> str:
    """A kubeconfig that authenticates through `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
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
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster,
                                "--region",
                                region,
                            ],
                        }
                    },
                }
            ],
        }
    )
