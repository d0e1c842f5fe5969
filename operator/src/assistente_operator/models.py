"""Typed model of the AssistenteDigital custom resource.

These pydantic models are the single source of truth: the CRD's OpenAPI schema is generated
from them (``crd.py``), and every cross-field CEL rule in the CRD has a Python twin in a
validator here, so ``assistente-operator render`` rejects what the API server would reject.
Models are frozen: builders read them and never fill in defaults themselves. Rule messages
are user-facing (kubectl prints them when it rejects an object), hence in Portuguese.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from assistente_operator import __version__

# Kubernetes resource quantity (a practical subset: no exponents).
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
# RFC 1123 DNS label / subdomain, as Kubernetes names must be.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
IMAGE_PATTERN = r"^[a-z0-9][a-zA-Z0-9._/:@-]*$"
HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
ObjectName = Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)]
LabelMap = Annotated[dict[str, str], Field(max_length=64)]


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError("ingress.trustedProxies aceita só faixas CIDR, como 10.0.0.0/8") from exc
    return value


# An IPv4 or IPv6 network, e.g. 10.0.0.0/8 (the CRD also checks it with CEL's isCIDR).
Cidr = Annotated[
    str,
    Field(pattern=r"^[0-9a-fA-F:.]+/[0-9]{1,3}$", max_length=49),
    AfterValidator(_cidr),
]


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    return {"rule": rule, "message": message, **extra}


class CRDModel(BaseModel):
    """Base of every schema object: camelCase on the wire, strict, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )
    # CEL rules of this object; crd.py copies them into the schema.
    cel_rules: ClassVar[tuple[dict[str, str], ...]] = ()


# --- shared building blocks -----------------------------------------------------------------


class SecretRef(CRDModel):
    """A reference to a Secret in the same namespace as the AssistenteDigital."""

    name: ObjectName
    """Name of the Secret."""


class SecretKeyRef(CRDModel):
    """One key of a Secret in the same namespace as the AssistenteDigital."""

    name: ObjectName
    """Name of the Secret."""
    key: str = Field(default="apiKey", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)
    """Key inside the Secret."""


class ResourceList(CRDModel):
    cpu: Quantity
    """CPU quantity, e.g. 250m."""
    memory: Quantity
    """Memory quantity, e.g. 256Mi."""


class Resources(CRDModel):
    requests: ResourceList = ResourceList(cpu="100m", memory="256Mi")
    """Resources the scheduler reserves for each pod."""
    limits: ResourceList = ResourceList(cpu="1", memory="512Mi")
    """Hard ceiling for each pod."""


class Autoscaling(CRDModel):
    cel_rules = (
        cel(
            "self.minReplicas <= self.maxReplicas",
            "autoscaling.minReplicas deve ser menor ou igual a autoscaling.maxReplicas",
        ),
    )

    enabled: bool = False
    """Create a HorizontalPodAutoscaler; the operator then never sets replicas itself."""
    min_replicas: int = Field(default=2, ge=1, le=1000)
    """Lower bound of the HorizontalPodAutoscaler."""
    max_replicas: int = Field(default=10, ge=1, le=1000)
    """Upper bound of the HorizontalPodAutoscaler."""
    target_cpu_utilization_percentage: int = Field(default=70, ge=10, le=100)
    """Average CPU utilisation (percent of requests) the autoscaler aims for."""

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(self.cel_rules[0]["message"])
        return self


class Workload(CRDModel):
    """Settings shared by every Deployment the operator runs."""

    image: str | None = Field(default=None, pattern=IMAGE_PATTERN, max_length=512)
    """Container image. Empty means the image of this release for the component."""
    replicas: int = Field(default=2, ge=0, le=1000)
    """Pod count when autoscaling is disabled."""
    autoscaling: Autoscaling = Autoscaling()
    resources: Resources = Resources()


class ApiSpec(Workload):
    """The FastAPI HTTP API (channels' entry point)."""


class WorkerSpec(Workload):
    """The queue worker that hands messages to Rasa."""


class NluSpec(Workload):
    """The Rasa server (NLU and dialogue)."""

    resources: Resources = Resources(
        requests=ResourceList(cpu="500m", memory="1Gi"),
        limits=ResourceList(cpu="2", memory="3Gi"),
    )


class DataJudSpec(CRDModel):
    api_key_secret_ref: SecretKeyRef
    """The CNJ's public DataJud API key (CNJ publishes and rotates it), from a Secret."""
    base_url: str | None = Field(default=None, pattern=r"^https?://", max_length=2048)
    """DataJud's base URL; empty uses the public endpoint."""


class ActionsSpec(Workload):
    """The Rasa action server (the specialised agents)."""

    resources: Resources = Resources(
        requests=ResourceList(cpu="200m", memory="256Mi"),
        limits=ResourceList(cpu="1", memory="1Gi"),
    )
    datajud: DataJudSpec | None = None
    """Case lookups on DataJud; without it the lookup agent says the service is unavailable."""


# --- channels ---------------------------------------------------------------------------------


class Channel(CRDModel):
    cel_rules = (
        cel("!self.enabled || has(self.secretRef)", "um canal habilitado precisa de secretRef"),
    )

    enabled: bool = False
    """Accept messages on this channel."""
    secret_ref: SecretRef | None = None
    """Secret with the channel's credentials (tokens, signing keys)."""

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> Channel:
        if self.enabled and self.secret_ref is None:
            raise ValueError(self.cel_rules[0]["message"])
        return self


class ClientChannel(CRDModel):
    """A channel whose clients speak the web contract: no provider, no credentials."""

    enabled: bool = True
    """Accept conversations from these clients."""


class Channels(CRDModel):
    web: ClientChannel = ClientChannel()
    """The web widget."""
    mobile: ClientChannel = ClientChannel()
    """The court's own mobile app (speaks the web contract)."""
    whatsapp: Channel = Channel()
    """WhatsApp Business Cloud API."""
    telegram: Channel = Channel()
    """Telegram Bot API."""
    voice: Channel = Channel()
    """Telephony (speech to text and back)."""


# --- agents -----------------------------------------------------------------------------------


class Agent(CRDModel):
    enabled: bool = True
    """Let the assistant route conversations to this agent."""
    escalation_threshold: int = Field(default=40, ge=0, le=100)
    """NLU confidence (percent) under which the agent hands over to a human."""
    max_failed_turns: int = Field(default=2, ge=1, le=10)
    """Turns without progress before escalating to the level-2 queue."""


class KnowledgeSource(CRDModel):
    name: str = Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)
    """Short identifier, shown in citations."""
    url: str = Field(min_length=1, max_length=2048, pattern=r"^(https?|file)://")
    """Where the documents live (https:// or file:// inside the action server image)."""


class KnowledgeBaseAgent(Agent):
    sources: list[KnowledgeSource] = Field(default=[], max_length=32)
    """Document collections the agent answers from (with citations)."""
    min_score: int = Field(default=55, ge=0, le=100)
    """Minimum retrieval confidence (percent) to answer instead of offering a human."""


class Agents(CRDModel):
    technical_support: Agent = Agent()
    """Suporte técnico (login, certificates, system errors)."""
    portal_services: Agent = Agent()
    """Serviços do portal (certidões, custas, Balcão Virtual, Jus.br)."""
    procedural_guidance: Agent = Agent()
    """Orientação processual (terms, deadlines, petitions, case lookups on DataJud)."""
    knowledge_base: KnowledgeBaseAgent = KnowledgeBaseAgent()
    """Answers from documentation, citing the source."""


# --- data stores ------------------------------------------------------------------------------


class StoreMode(StrEnum):
    IN_CLUSTER = "inCluster"
    EXTERNAL = "external"


class Persistence(CRDModel):
    cel_rules = (
        cel(
            "!quantity(self.size).isLessThan(quantity(oldSelf.size))",
            "o tamanho do armazenamento não pode diminuir",
            fieldPath=".size",
        ),
    )

    enabled: bool = True
    """Keep data on a PersistentVolumeClaim; false uses an emptyDir (tests, demos)."""
    size: Quantity = "1Gi"
    """Volume size. It can grow but never shrink."""
    storage_class_name: ObjectName | None = None
    """StorageClass; empty uses the cluster default."""


class InClusterRedis(CRDModel):
    image: str = Field(default="redis:7.4.6-alpine", pattern=IMAGE_PATTERN, max_length=512)
    """Redis image (the same image runs Sentinel)."""
    exporter_image: str = Field(
        default="oliver006/redis_exporter:v1.45.0", pattern=IMAGE_PATTERN, max_length=512
    )
    """redis_exporter image, run beside each Redis for Prometheus (the alert rules read it)."""
    replicas: int = Field(default=3, ge=1, le=9)
    """Redis pods: one master and replicas; Sentinel runs next to each one."""
    sentinel_quorum: int = Field(default=2, ge=1, le=9)
    """Sentinels that must agree before a failover."""
    persistence: Persistence = Persistence()
    resources: Resources = Resources(
        requests=ResourceList(cpu="100m", memory="256Mi"),
        limits=ResourceList(cpu="1", memory="1Gi"),
    )


class ExternalRedis(CRDModel):
    secret_ref: SecretRef
    """Secret with keys ``url`` (redis:// or rediss://), ``host``, ``port`` and optionally
    ``password`` (for Rasa's lock store)."""


class RedisSpec(CRDModel):
    cel_rules = (
        cel(
            "self.mode != 'external' || has(self.external)",
            "redis.mode external exige redis.external.secretRef",
        ),
        cel("self.mode == oldSelf.mode", "redis.mode não pode ser alterado"),
        cel(
            "self.mode != 'inCluster' || self.inCluster.sentinelQuorum <= self.inCluster.replicas",
            "redis.inCluster.sentinelQuorum não pode ser maior que redis.inCluster.replicas",
        ),
    )

    mode: StoreMode = StoreMode.IN_CLUSTER
    """inCluster runs Redis with Sentinel; external uses a managed Redis."""
    in_cluster: InClusterRedis = InClusterRedis()
    external: ExternalRedis | None = None

    @model_validator(mode="after")
    def _check(self) -> RedisSpec:
        if self.mode == StoreMode.EXTERNAL and self.external is None:
            raise ValueError(self.cel_rules[0]["message"])
        if (
            self.mode == StoreMode.IN_CLUSTER
            and self.in_cluster.sentinel_quorum > self.in_cluster.replicas
        ):
            raise ValueError(self.cel_rules[2]["message"])
        return self


class PostgresMode(StrEnum):
    CLOUDNATIVEPG = "cloudnativepg"
    EXTERNAL = "external"


class PostgresBackup(CRDModel):
    cel_rules = (
        cel(
            "!self.enabled || (has(self.destinationPath) && has(self.credentialsSecretRef))",
            "backups exigem destinationPath e credentialsSecretRef",
        ),
    )

    enabled: bool = False
    """Archive WAL and take scheduled base backups to an object store."""
    destination_path: str | None = Field(
        default=None, pattern=r"^(s3|gs|https)://", max_length=1024
    )
    """Object store URL, e.g. s3://bucket/prefix."""
    credentials_secret_ref: SecretRef | None = None
    """Secret with the object store credentials (ACCESS_KEY_ID / ACCESS_SECRET_KEY)."""
    schedule: str = Field(default="0 0 3 * * *", max_length=64)
    """Base backup schedule (six-field cron, seconds first, as CloudNativePG expects)."""
    retention_policy: str = Field(default="30d", pattern=r"^[1-9][0-9]*[dwm]$")
    """How long backups are kept."""

    @model_validator(mode="after")
    def _check(self) -> PostgresBackup:
        if self.enabled and (self.destination_path is None or self.credentials_secret_ref is None):
            raise ValueError(self.cel_rules[0]["message"])
        return self


class CloudNativePG(CRDModel):
    instances: int = Field(default=3, ge=1, le=9)
    """PostgreSQL instances: one primary plus read replicas."""
    image_name: str | None = Field(default=None, pattern=IMAGE_PATTERN, max_length=512)
    """PostgreSQL image; empty uses the CloudNativePG default."""
    storage: Persistence = Persistence(size="10Gi")
    backup: PostgresBackup = PostgresBackup()
    operator_namespace: str = Field(
        default="cnpg-system", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63
    )
    """Namespace of the CloudNativePG operator (its NetworkPolicy lets it reach the instances)."""


class ExternalPostgres(CRDModel):
    secret_ref: SecretRef
    """Secret laid out like CloudNativePG's app Secret: ``uri`` (read-write endpoint),
    ``ro-uri`` (read-only endpoint), ``host``, ``port``, ``dbname``, ``user``, ``password``."""


class PostgresSpec(CRDModel):
    cel_rules = (
        cel(
            "self.mode != 'external' || has(self.external)",
            "postgres.mode external exige postgres.external.secretRef",
        ),
        cel("self.mode == oldSelf.mode", "postgres.mode não pode ser alterado"),
    )

    mode: PostgresMode = PostgresMode.CLOUDNATIVEPG
    """cloudnativepg renders a CloudNativePG Cluster; external uses a managed database."""
    cloudnativepg: CloudNativePG = CloudNativePG()
    external: ExternalPostgres | None = None
    rasa_secret_ref: SecretRef | None = None
    """Rasa's own database user, for its tracker store (never the app's user). With
    cloudnativepg: a ``kubernetes.io/basic-auth`` Secret whose ``username`` is ``rasa`` (the
    Cluster manages the role; Rasa creates its database ``rasa``). With external: a Secret
    with ``host``, ``port``, ``dbname``, ``user`` and ``password`` of Rasa's database."""

    @model_validator(mode="after")
    def _check(self) -> PostgresSpec:
        if self.mode == PostgresMode.EXTERNAL and self.external is None:
            raise ValueError(self.cel_rules[0]["message"])
        return self


# --- edge, observability, policies ------------------------------------------------------------


class IngressSpec(CRDModel):
    cel_rules = (
        cel("!self.enabled || has(self.host)", "um ingress habilitado precisa de host"),
        cel(
            "!self.enabled || (has(self.trustedProxies) && size(self.trustedProxies) > 0)",
            "um ingress habilitado precisa de trustedProxies (as faixas de IP do controlador de "
            "ingress), senão todos os cidadãos dividem o mesmo limite por IP",
        ),
        cel(
            "!has(self.trustedProxies) || self.trustedProxies.all(c, isCIDR(c))",
            "ingress.trustedProxies aceita só faixas CIDR, como 10.0.0.0/8",
        ),
    )

    enabled: bool = False
    """Expose the API through an Ingress."""
    host: str | None = Field(default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Public host name, e.g. assistente.tjxx.jus.br."""
    class_name: ObjectName | None = None
    """IngressClass; empty uses the cluster default."""
    tls_secret_name: ObjectName | None = None
    """Secret holding the TLS certificate (e.g. issued by cert-manager)."""
    annotations: LabelMap = {}
    """Extra annotations (cloud load balancer settings, cert-manager issuer)."""
    trusted_proxies: list[Cidr] = Field(default=[], max_length=32)
    """CIDRs of the Ingress controller (or load balancer) in front of the API: the API believes
    their X-Forwarded-For, so the per-IP limits see each citizen's address."""

    @model_validator(mode="after")
    def _check(self) -> IngressSpec:
        if self.enabled and self.host is None:
            raise ValueError(self.cel_rules[0]["message"])
        if self.enabled and not self.trusted_proxies:
            raise ValueError(self.cel_rules[1]["message"])
        return self


class OidcSpec(CRDModel):
    """The identity provider (e.g. Keycloak) whose access tokens the agent and admin APIs accept.
    The API refuses to start without it."""

    issuer: str = Field(pattern=r"^https?://", max_length=2048)
    """Issuer URL (the tokens' ``iss``), e.g. https://sso.tjxx.jus.br/realms/tribunal."""
    audience: str = Field(min_length=1, max_length=253)
    """Expected ``aud`` of the tokens (the API's client id)."""
    jwks_url: str = Field(pattern=r"^https?://", max_length=2048)
    """Where the issuer publishes its signing keys (JWKS)."""
    roles_claim: str = Field(default="realm_access.roles", max_length=253)
    """Claim holding the roles (agent, admin), dotted for nested claims."""
    client_id: str = Field(default="assistente-console", min_length=1, max_length=255)
    """The clerks' console's public client at the issuer (authorization code + PKCE)."""
    team_role_prefix: str = Field(default="equipe:", max_length=64)
    """Realm role <prefix><team> puts a clerk on a team's queue (e.g. equipe:suporte_tecnico)."""
    supervisor_role: str = Field(default="supervisor", min_length=1, max_length=64)
    """Realm role of supervisors: every queue, the clerks online and the team figures."""


class SecuritySpec(CRDModel):
    """Credentials the components use between themselves, from a Secret you create."""

    secret_ref: SecretRef
    """Secret with the keys ``redis-password`` (in-cluster Redis and its Sentinels; letters
    and digits), ``rasa-token`` (Rasa's HTTP API) and ``lgpd-audit-key`` (the key of the LGPD
    audit's hashes of phone numbers and protocols)."""


class MonitoringSpec(CRDModel):
    enabled: bool = True
    """Master switch for the objects below (each is created only if its CRD is served)."""
    service_monitors: bool = True
    """ServiceMonitors for the API and Rasa, PodMonitor for the worker."""
    prometheus_rules: bool = True
    """Alerting rules (PrometheusRule)."""
    grafana_dashboards: bool = True
    """Dashboard ConfigMaps labelled for the Grafana sidecar."""
    labels: LabelMap = {}
    """Labels for monitoring objects so Prometheus selects them (release: kube-prometheus-stack)."""
    interval: str = Field(default="30s", pattern=r"^[1-9][0-9]*(s|m)$")
    """Scrape interval."""
    log_labels: LabelMap = {}
    """Extra pod labels for Loki/promtail stream selection (e.g. tenant: tjxx)."""


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class ServiceHours(CRDModel):
    cel_rules = (
        cel("self.start < self.end", "serviceHours.start deve ser anterior a serviceHours.end"),
    )

    timezone: str = Field(default="America/Sao_Paulo", max_length=64)
    days: list[Weekday] = Field(
        default=[Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
        min_length=1,
        max_length=7,
    )
    start: str = Field(default="08:00", pattern=HHMM_PATTERN)
    end: str = Field(default="18:00", pattern=HHMM_PATTERN)

    @model_validator(mode="after")
    def _check(self) -> ServiceHours:
        if self.start >= self.end:
            raise ValueError(self.cel_rules[0]["message"])
        return self


class EscalationSpec(CRDModel):
    service_hours: ServiceHours = ServiceHours()
    """When level-2 attendants are on duty."""
    queue_limit: int = Field(default=500, ge=1, le=100000)
    """Conversations waiting per team before new escalations get an out-of-capacity answer."""
    max_wait_minutes: int = Field(default=60, ge=1, le=1440)
    """Wait after which a queued conversation is answered with a protocol to follow up later."""


class RetentionSpec(CRDModel):
    conversation_days: int = Field(default=180, ge=1, le=3650)
    """Days to keep conversations (LGPD: no longer than needed)."""
    anonymize_after_days: int = Field(default=30, ge=0, le=3650)
    """Days after which personal data in closed conversations is anonymised (0 = at once)."""


# --- placement --------------------------------------------------------------------------------


class Toleration(CRDModel):
    """Lets pods run on nodes with a matching taint, as a pod's tolerations do."""

    key: str = Field(max_length=317)
    """Taint key, e.g. assistente.digital/pool."""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Empty matches every effect."""


class PoolPlacement(CRDModel):
    node_selector: LabelMap = {}
    """Labels a node must carry, e.g. {assistente.digital/pool: app}."""
    tolerations: list[Toleration] = Field(default=[], max_length=16)


class Placement(CRDModel):
    """Which nodes run what: a cluster with separate node pools keeps stateful pods apart."""

    application: PoolPlacement = PoolPlacement()
    """The API, the worker, Rasa and the action server."""
    data: PoolPlacement = PoolPlacement()
    """In-cluster Redis and the CloudNativePG instances."""


# --- the resource -----------------------------------------------------------------------------


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class AssistenteDigitalSpec(CRDModel):
    cel_rules = (
        cel(
            "has(self.security)",
            "spec.security.secretRef é obrigatório: o Secret com a senha do Redis, o token da "
            "API do Rasa e a chave da auditoria LGPD",
        ),
        cel(
            # At this level because the CRD defaults postgres to {} (a nested rule would pass).
            "has(self.postgres) && has(self.postgres.rasaSecretRef)",
            "spec.postgres.rasaSecretRef é obrigatório: o Rasa usa um usuário próprio no banco, "
            "sem acesso às tabelas do atendimento",
        ),
        cel(
            # has(): the CRD's default for spec ({}) is validated before nested defaulting.
            "!has(self.retention)"
            " || self.retention.anonymizeAfterDays <= self.retention.conversationDays",
            "retention.anonymizeAfterDays não pode ser maior que retention.conversationDays",
        ),
    )

    version: str = Field(
        default=__version__, pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]*$", max_length=64
    )
    """Release of the assistant; it picks the default image tags."""
    paused: bool = False
    """Stop reconciling: the operator changes nothing until this is false again."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """What deleting this resource (by hand or an Argo CD prune) does to the data: Retain keeps
    the CloudNativePG Cluster and the Redis volumes, for a resource of the same name to take
    over; Delete removes them with everything else."""
    api: ApiSpec = ApiSpec()
    nlu: NluSpec = NluSpec()
    actions: ActionsSpec = ActionsSpec()
    worker: WorkerSpec = WorkerSpec()
    channels: Channels = Channels()
    agents: Agents = Agents()
    redis: RedisSpec = RedisSpec()
    postgres: PostgresSpec = PostgresSpec()
    ingress: IngressSpec = IngressSpec()
    oidc: OidcSpec | None = None
    """Sign-in of clerks and admins. Required: the API does not start in production without it."""
    security: SecuritySpec | None = None
    """Credentials between the components (Redis password, Rasa's API token, the audit key).
    Required."""
    monitoring: MonitoringSpec = MonitoringSpec()
    escalation: EscalationSpec = EscalationSpec()
    retention: RetentionSpec = RetentionSpec()
    placement: Placement = Placement()

    @model_validator(mode="after")
    def _check(self) -> AssistenteDigitalSpec:
        # Every broken rule at once, as the API server reports them.
        broken = [
            rule["message"]
            for rule, ok in zip(
                self.cel_rules,
                (
                    self.security is not None,
                    self.postgres.rasa_secret_ref is not None,
                    self.retention.anonymize_after_days <= self.retention.conversation_days,
                ),
                strict=True,
            )
            if not ok
        ]
        if broken:
            raise ValueError("; ".join(broken))
        return self


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CRDModel):
    type: str = Field(pattern=r"^[A-Z][A-Za-z]*$", max_length=64)
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=128)
    message: str = Field(default="", max_length=4096)
    last_transition_time: str
    observed_generation: int | None = Field(default=None, ge=0)


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    FAILED = "Failed"


class ComponentStatus(CRDModel):
    name: str = Field(max_length=64)
    kind: str = Field(max_length=64)
    ready_replicas: int = 0
    replicas: int = 0


class AssistenteDigitalStatus(CRDModel):
    observed_generation: int | None = None
    """The metadata.generation the operator last acted on."""
    phase: Phase | None = None
    """Summary for humans and dashboards; conditions are the contract."""
    api_replicas: str | None = Field(default=None, max_length=32)
    """Ready/desired API pods, e.g. 2/2."""
    conditions: list[Condition] = Field(
        default=[],
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    components: list[ComponentStatus] = Field(
        default=[],
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class ObjectMeta(BaseModel):
    """The part of metadata the builders read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=40)
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = {}


class AssistenteDigital(BaseModel):
    """A whole custom resource as the operator reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: ObjectMeta
    spec: AssistenteDigitalSpec
    status: dict[str, Any] = {}

    @classmethod
    def from_body(cls, body: Any) -> AssistenteDigital:
        """Parses a Kubernetes object (a dict or a kopf Body)."""
        return cls.model_validate(
            {
                "metadata": dict(body.get("metadata") or {}),
                "spec": dict(body.get("spec") or {}),
                "status": dict(body.get("status") or {}),
            }
        )


Component = Literal["api", "nlu", "actions", "worker"]
COMPONENTS: tuple[Component, ...] = ("api", "nlu", "actions", "worker")
