"""Every stack setting, read from Pulumi config in this one module and validated at once.

The keys are documented in ``Pulumi.yaml`` (``config:``); this module is their only reader. A bad
value (an unknown region, a replica count below 1, a secret that is missing or stored in clear)
raises :class:`ConfigError` with one line per problem before the program registers any
resource. Messages are for the court's cloud team, hence in Portuguese.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

import pulumi
from pulumi.runtime.config import is_config_secret
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from assistente_pulumi.regions import check_region

PROJECT: Final = "assistente-digital"

Cloud = Literal["aws", "azure", "gcp", "onprem"]
InstallMode = Literal["operator", "argocd"]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=20)]

# Keys whose values must be Pulumi secrets (`pulumi config set --secret`).
SECRET_KEYS: Final = (
    "postgresPassword",
    "redisPassword",
    "datajudApiKey",
    "channelSecrets",
    "componentSecrets",
    "rasaPostgresPassword",
)


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; Pulumi prints the message without a traceback."""


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class NodePool(ConfigModel):
    machine_type: str | None = None
    """Instance type / VM size; empty uses the cloud's default for the pool."""
    node_count: int = Field(default=3, ge=1, le=100)
    """Nodes spread over the region's zones (the seed layout runs 3 + 3)."""
    max_count: int | None = Field(default=None, ge=1, le=300)
    """Upper bound for the cluster autoscaler; empty means three times ``nodeCount``."""
    disk_size_gb: int = Field(default=100, ge=30, le=2048)

    @model_validator(mode="after")
    def _max_not_below_count(self) -> Self:
        if self.max_count is not None and self.max_count < self.node_count:
            raise ValueError("maxCount não pode ser menor que nodeCount")
        return self

    @property
    def autoscaling_max(self) -> int:
        return self.max_count or self.node_count * 3


class ClusterSettings(ConfigModel):
    kubernetes_version: str = Field(default="1.33", pattern=r"^1\.[0-9]{2}$")
    app_pool: NodePool = NodePool()
    """API, workers, Rasa and actions."""
    data_pool: NodePool = NodePool()
    """Stateful pods (in-cluster Redis, CloudNativePG); tainted so only they land there."""
    api_allowed_cidrs: list[str] = Field(default=[], max_length=40)
    """Networks allowed to reach the Kubernetes API (the CI runners, the court's VPN)."""

    @model_validator(mode="after")
    def _cidrs(self) -> Self:
        for cidr in self.api_allowed_cidrs:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError as error:
                raise ValueError(f"apiAllowedCidrs: CIDR inválido {cidr!r} ({error})") from None
            if network.prefixlen == 0:
                raise ValueError(
                    "apiAllowedCidrs: 0.0.0.0/0 abriria a API do Kubernetes para a internet"
                )
        return self


class PostgresSettings(ConfigModel):
    version: str = Field(default="16", pattern=r"^1[4-7]$")
    machine_type: str | None = None
    """Instance class / SKU / tier; empty uses the cloud's default."""
    storage_gb: int = Field(default=100, ge=20, le=16384)
    read_replicas: int = Field(default=1, ge=1, le=5)
    """Read replicas beside the HA pair; the API's read-only queries go to the first one."""
    backup_retention_days: int = Field(default=14, ge=7, le=35)
    database: DnsLabel = "assistente"
    user: DnsLabel = "assistente"


class RedisSettings(ConfigModel):
    machine_type: str | None = None
    """Node type / SKU; empty uses the cloud's default."""
    replicas: int = Field(default=1, ge=1, le=5)
    """Replicas of the primary; failover promotes one of them."""
    memory_gb: int = Field(default=5, ge=1, le=300)
    """Memorystore capacity (Google Cloud only; the others size by machine type)."""


class NetworkSettings(ConfigModel):
    cidr: str = "10.40.0.0/16"
    """Address space of the VPC / VNet; subnets are carved out of it."""

    @model_validator(mode="after")
    def _cidr(self) -> Self:
        try:
            network = ipaddress.ip_network(self.cidr, strict=True)
        except ValueError as error:
            raise ValueError(f"network.cidr inválido {self.cidr!r} ({error})") from None
        if network.version != 4 or not network.is_private or network.prefixlen > 18:
            raise ValueError("network.cidr deve ser uma rede IPv4 privada de /18 ou maior")
        return self


class ArgoCdSettings(ConfigModel):
    repo_url: str = Field(
        default="https://github.com/assistente-digital/assistente-digital.git",
        pattern=r"^(https://|ssh://|git@|file://)",
    )
    target_revision: str = "main"
    path: str = "argocd/root"
    namespace: DnsLabel = "argocd"


class ExternalPostgres(ConfigModel):
    """An existing PostgreSQL server (on-prem clusters whose spec uses postgres.mode external)."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = Field(default="assistente", min_length=1, max_length=63)
    user: str = Field(default="assistente", min_length=1, max_length=63)
    read_only_host: str | None = None
    """Host of a read replica; empty sends read-only queries to ``host``."""


class RasaPostgres(ConfigModel):
    """Rasa's own database and user on the externalPostgres server (created by its DBA: a role
    that may log in and owns the database, nothing more)."""

    dbname: str = Field(default="rasa", min_length=1, max_length=63)
    user: str = Field(default="rasa", min_length=1, max_length=63)


class ComponentSecrets(ConfigModel):
    """The components' credentials (the resource's security.secretRef); each one left empty is
    generated at the first `up` and kept."""

    redis_password: SecretStr | None = None
    """In-cluster Redis and its Sentinels (letters and digits only)."""
    rasa_token: SecretStr | None = None
    """Rasa's HTTP API token."""
    lgpd_audit_key: SecretStr | None = None
    """Key of the LGPD audit's hashes of phone numbers and protocols."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name, value in (
            ("redisPassword", self.redis_password),
            ("rasaToken", self.rasa_token),
            ("lgpdAuditKey", self.lgpd_audit_key),
        ):
            if value is not None and len(value.get_secret_value()) < 16:
                raise ValueError(f"componentSecrets.{name}: use pelo menos 16 caracteres")
        password = self.redis_password
        if password is not None and not password.get_secret_value().isalnum():
            raise ValueError("componentSecrets.redisPassword: use apenas letras e dígitos")
        return self


class StackConfig(ConfigModel):
    cloud: Cloud
    court: DnsLabel
    """Short name of the court (e.g. tjxx); prefixes cloud resource names."""
    environment: DnsLabel = "prod"
    region: str | None = None
    install: InstallMode = "operator"
    """operator: the operator and the AssistenteDigital; argocd: Argo CD's root application."""
    tags: dict[str, str] = {}
    cluster: ClusterSettings = ClusterSettings()
    postgres: PostgresSettings = PostgresSettings()
    redis: RedisSettings = RedisSettings()
    network: NetworkSettings = NetworkSettings()
    gcp_project: str | None = Field(default=None, pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    kubeconfig: str | None = None
    """onprem: path to the kubeconfig of the existing cluster; empty uses $KUBECONFIG."""
    kube_context: str | None = None
    operator_image: str | None = Field(default=None, pattern=r"^[a-z0-9][a-zA-Z0-9._/:@-]*$")
    assistant_spec: dict[str, Any] = {}
    """JSON merge patch applied to the overlay's AssistenteDigital spec (install: operator)."""
    argocd: ArgoCdSettings = ArgoCdSettings()
    external_postgres: ExternalPostgres | None = None
    wait_for_ready: bool = True
    """Make `pulumi up` wait until the AssistenteDigital reports Ready."""
    ready_timeout_minutes: int = Field(default=20, ge=1, le=120)
    postgres_password: SecretStr | None = None
    redis_password: SecretStr | None = None
    datajud_api_key: SecretStr | None = None
    """The CNJ's public DataJud API key, for the Secret the resource's actions.datajud names."""
    channel_secrets: dict[str, dict[str, SecretStr]] = {}
    """Per channel with credentials, the keys of its Secret (telegram: BOT_TOKEN, ...)."""
    component_secrets: ComponentSecrets = ComponentSecrets()
    rasa_postgres: RasaPostgres = RasaPostgres()
    rasa_postgres_password: SecretStr | None = None
    """Password of Rasa's user: the one its DBA set (externalPostgres), or generated at the
    first `up` when empty (CloudNativePG creates the role from the Secret)."""

    @property
    def name_prefix(self) -> str:
        """Prefix of cloud resource names, e.g. ``ad-tjxx-prod``."""
        return f"ad-{self.court}-{self.environment}"

    @property
    def all_tags(self) -> dict[str, str]:
        return {
            "app": "assistente-digital",
            "court": self.court,
            "environment": self.environment,
            "managed-by": "pulumi",
            **self.tags,
        }


# Top-level keys and whether Pulumi stores them as JSON objects.
_OBJECT_KEYS: Final = frozenset(
    {
        "tags",
        "cluster",
        "postgres",
        "redis",
        "network",
        "assistantSpec",
        "argocd",
        "externalPostgres",
        "channelSecrets",
        "componentSecrets",
        "rasaPostgres",
    }
)
_SCALAR_KEYS: Final = (
    "cloud",
    "court",
    "environment",
    "region",
    "install",
    "gcpProject",
    "kubeconfig",
    "kubeContext",
    "operatorImage",
    "waitForReady",
    "readyTimeoutMinutes",
    "postgresPassword",
    "redisPassword",
    "datajudApiKey",
    "rasaPostgresPassword",
)


def load(config: pulumi.Config | None = None) -> StackConfig:
    """Reads and validates every key of the stack; raises ConfigError listing all problems."""
    config = config or pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for key in (*_SCALAR_KEYS, *sorted(_OBJECT_KEYS)):
        try:
            value = config.get_object(key) if key in _OBJECT_KEYS else config.get(key)
        except pulumi.ConfigTypeError as error:
            problems.append(f"{key}: {error}")
            continue
        if value is None:
            continue
        if key in SECRET_KEYS and not is_config_secret(config.full_key(key)):
            problems.append(
                f"{key}: é um segredo; defina-o com `pulumi config set --secret {key} ...` "
                "(nunca em claro no Pulumi.<stack>.yaml)"
            )
        raw[key] = value
    if problems:
        raise ConfigError(_report(problems))
    return validate(raw)


def validate(raw: Mapping[str, Any]) -> StackConfig:
    """Validates raw config values (camelCase keys, as in Pulumi.<stack>.yaml)."""
    problems = requirement_problems(raw)
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(_report(describe_errors(error) + problems)) from None
    if problems:
        raise ConfigError(_report(problems))
    return config


def _nested(raw: Mapping[str, Any], *path: str) -> Any:
    value: Any = raw
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def requirement_problems(raw: Mapping[str, Any]) -> list[str]:
    """What each cloud requires beyond the types, checked on the raw values so that these
    problems are reported together with the type errors."""
    problems: list[str] = []
    cloud = raw.get("cloud")
    managed = cloud in ("aws", "azure", "gcp")
    if managed:
        region = raw.get("region")
        if not region:
            problems.append(f"region: obrigatório para {cloud}")
        else:
            try:
                check_region(str(cloud), str(region))
            except ValueError as error:
                problems.append(f"region: {error}")
        if not _nested(raw, "cluster", "apiAllowedCidrs"):
            problems.append(
                "cluster.apiAllowedCidrs: informe as redes que podem acessar a API do "
                "Kubernetes (a dos runners de CI, a VPN do tribunal)"
            )
        if not raw.get("postgresPassword"):
            problems.append("postgresPassword: obrigatório (senha do administrador do banco)")
        if raw.get("externalPostgres") is not None:
            problems.append(f"externalPostgres: só vale para onprem, não para {cloud}")
        if raw.get("kubeconfig") or raw.get("kubeContext"):
            problems.append("kubeconfig/kubeContext: só valem para onprem")
    password = raw.get("postgresPassword")
    if password and len(str(password)) < 16:
        problems.append("postgresPassword: use pelo menos 16 caracteres")
    if cloud == "aws":
        token = str(raw.get("redisPassword") or "")
        if not 16 <= len(token) <= 128 or any(c in token for c in '@"/ '):
            problems.append(
                "redisPassword: obrigatório na AWS (token AUTH do ElastiCache: 16 a 128 "
                "caracteres, sem @, aspas, / ou espaço)"
            )
    if cloud == "gcp" and not raw.get("gcpProject"):
        problems.append("gcpProject: obrigatório no Google Cloud")
    if raw.get("install") == "argocd" and raw.get("assistantSpec"):
        problems.append(
            "assistantSpec: com install argocd o recurso vem do Git (overlays/); "
            "mude-o lá ou use install operator"
        )
    return problems


def _report(problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"configuração inválida da stack ({PROJECT}):\n{lines}"


_MESSAGES: Final = {
    "missing": "obrigatório",
    "extra_forbidden": "chave desconhecida (veja Pulumi.yaml)",
    "greater_than_equal": "deve ser maior ou igual a {ge}",
    "less_than_equal": "deve ser menor ou igual a {le}",
    "literal_error": "deve ser um de: {expected}",
    "string_pattern_mismatch": "formato inválido (esperado: {pattern})",
    "string_too_long": "muito longo (máximo {max_length} caracteres)",
    "int_parsing": "deve ser um número inteiro",
    "bool_parsing": "deve ser true ou false",
    "dict_type": "deve ser um objeto",
    "list_type": "deve ser uma lista",
    "string_type": "deve ser um texto",
}


def describe_errors(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        template = _MESSAGES.get(item["type"])
        if template is not None:
            message = template.format(**(item.get("ctx") or {}))
        else:
            message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "value_error" and not where:
            problems.extend(message.split("; "))
        else:
            problems.append(f"{where}: {message}" if where else message)
    return problems
