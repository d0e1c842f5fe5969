"""The four application components: API, worker, Rasa server (nlu) and action server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.models import (
    AssistenteDigital,
    Component,
    PostgresMode,
    StoreMode,
    Workload,
)

IMAGE_REGISTRY = "ghcr.io/assistente-digital"
REDIS_SENTINEL_MASTER = "assistente"
CHANNELS = ("web", "mobile", "whatsapp", "telegram", "voice")
# Channels whose provider credentials come from a Secret (the others speak the web contract).
PROVIDER_CHANNELS = ("whatsapp", "telegram", "voice")
AGENTS_FILE = "/etc/assistente/agents.json"


@dataclass(frozen=True)
class ComponentShape:
    """What differs between the components, besides their spec."""

    name: Component
    image: str  # repository under IMAGE_REGISTRY
    port: int
    ready_path: str
    live_path: str
    startup_seconds: int
    uid: int
    has_service: bool
    args: tuple[str, ...] = ()


# The action server serves /metrics on a port of its own: its webhook port stays closed to all
# but the Rasa server (NetworkPolicy), while Prometheus may reach the metrics.
ACTIONS_METRICS_PORT = 9102

SHAPES: dict[Component, ComponentShape] = {
    "api": ComponentShape("api", "api", 8000, "/readyz", "/healthz", 60, 10001, True),
    # The worker's only HTTP server is its Prometheus exporter; it answers while the process lives.
    "worker": ComponentShape("worker", "worker", 9101, "/metrics", "/metrics", 60, 10001, False),
    # The Rasa image's entry point runs `rasa run` with the env-driven endpoints.yml.
    "nlu": ComponentShape("nlu", "rasa", 5005, "/", "/", 600, 1001, True),
    "actions": ComponentShape("actions", "actions", 5055, "/health", "/health", 120, 1001, True),
}


def workload_spec(cr: AssistenteDigital, component: Component) -> Workload:
    spec: Workload = getattr(cr.spec, component)
    return spec


def image_for(cr: AssistenteDigital, component: Component) -> str:
    spec = workload_spec(cr, component)
    return spec.image or f"{IMAGE_REGISTRY}/{SHAPES[component].image}:{cr.spec.version}"


def deployment_ref(cr: AssistenteDigital, component: Component) -> common.ChildRef:
    return common.ChildRef("apps/v1", "Deployment", common.child_name(cr, component))


def min_replicas(cr: AssistenteDigital, component: Component) -> int:
    """The fewest pods the component is meant to run (what a PDB may rely on)."""
    spec = workload_spec(cr, component)
    return spec.autoscaling.min_replicas if spec.autoscaling.enabled else spec.replicas


# --- configuration ----------------------------------------------------------------------------

# Keys of the security Secret (spec.security.secretRef).
REDIS_PASSWORD_KEY = "redis-password"  # noqa: S105 (the name of a key, not a password)
RASA_TOKEN_KEY = "rasa-token"  # noqa: S105
AUDIT_KEY_KEY = "lgpd-audit-key"
RASA_DATABASE = "rasa"  # what Rasa creates with its own user on the CloudNativePG cluster


def secret_env(env: str, secret: str, key: str) -> Manifest:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def security_secret(cr: AssistenteDigital) -> str:
    assert cr.spec.security is not None  # required by the CRD (and the model)
    return cr.spec.security.secret_ref.name


def rasa_database(cr: AssistenteDigital) -> tuple[str, list[Manifest], str]:
    """How Rasa's own database is reached: (prefix of the variables, the variables holding
    user and password, host, port and name, a libpq URL expanding them)."""
    postgres = cr.spec.postgres
    assert postgres.rasa_secret_ref is not None  # required by the CRD (and the model)
    secret = postgres.rasa_secret_ref.name
    if postgres.mode == PostgresMode.EXTERNAL:
        keys = {"USER": "user", "PASSWORD": "password", "HOST": "host", "PORT": "port"}
        keys["NAME"] = "dbname"
        parts = [
            secret_env(f"ASSISTENTE_RASA_DB_{part}", secret, key) for part, key in keys.items()
        ]
        url = (
            "postgresql://$(ASSISTENTE_RASA_DB_USER):$(ASSISTENTE_RASA_DB_PASSWORD)"
            "@$(ASSISTENTE_RASA_DB_HOST):$(ASSISTENTE_RASA_DB_PORT)/$(ASSISTENTE_RASA_DB_NAME)"
        )
        return "ASSISTENTE_RASA_DB_", parts, url
    # CloudNativePG manages the role from a basic-auth Secret (username rasa, password).
    parts = [
        secret_env("ASSISTENTE_RASA_DB_USER", secret, "username"),
        secret_env("ASSISTENTE_RASA_DB_PASSWORD", secret, "password"),
    ]
    host = f"{cr.metadata.name}-pg-rw"
    url = (
        "postgresql://$(ASSISTENTE_RASA_DB_USER):$(ASSISTENTE_RASA_DB_PASSWORD)"
        f"@{host}:5432/{RASA_DATABASE}"
    )
    return "ASSISTENTE_RASA_DB_", parts, url


def app_security_env(cr: AssistenteDigital) -> list[Manifest]:
    """What the API and the worker need besides their stores: the audit key, Rasa's tracker
    (LGPD erasure deletes its events), the in-cluster Redis password."""
    security = security_secret(cr)
    _, parts, url = rasa_database(cr)
    env = [
        secret_env("ASSISTENTE_LGPD_AUDIT_KEY", security, AUDIT_KEY_KEY),
        *parts,
        {"name": "ASSISTENTE_RASA_TRACKER_DATABASE_URL", "value": url},
    ]
    if cr.spec.redis.mode == StoreMode.IN_CLUSTER:
        env.append(secret_env("ASSISTENTE_REDIS_PASSWORD", security, REDIS_PASSWORD_KEY))
    return env


def redis_env(cr: AssistenteDigital) -> list[Manifest]:
    redis = cr.spec.redis
    if redis.mode == StoreMode.EXTERNAL and redis.external is not None:
        ref = {"name": redis.external.secret_ref.name, "key": "url"}
        return [{"name": "ASSISTENTE_REDIS_URL", "valueFrom": {"secretKeyRef": ref}}]
    name = cr.metadata.name
    return [
        # The bootstrap master; Sentinel-aware clients should use the two variables below.
        {
            "name": "ASSISTENTE_REDIS_URL",
            "value": f"redis://{name}-redis-0.{name}-redis-headless:6379/0",
        },
        {"name": "ASSISTENTE_REDIS_SENTINELS", "value": f"{name}-redis:26379"},
        {"name": "ASSISTENTE_REDIS_SENTINEL_MASTER", "value": REDIS_SENTINEL_MASTER},
    ]


def postgres_secret_name(cr: AssistenteDigital) -> str:
    postgres = cr.spec.postgres
    if postgres.mode == PostgresMode.EXTERNAL and postgres.external is not None:
        return postgres.external.secret_ref.name
    return f"{cr.metadata.name}-pg-app"  # created by CloudNativePG for the Cluster


def postgres_env(cr: AssistenteDigital) -> list[Manifest]:
    secret = postgres_secret_name(cr)

    def from_secret(env: str, key: str) -> Manifest:
        return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    env = [from_secret("ASSISTENTE_DATABASE_URL", "uri")]
    if cr.spec.postgres.mode == PostgresMode.EXTERNAL:
        env.append(from_secret("ASSISTENTE_DATABASE_READ_URL", "ro-uri"))
    else:
        # CloudNativePG's app Secret has no read-only URI; Kubernetes expands $(VAR) references
        # to the parts declared before it.
        read_host = f"{cr.metadata.name}-pg-ro"
        env += [
            from_secret("ASSISTENTE_DB_NAME", "dbname"),
            from_secret("ASSISTENTE_DB_USER", "user"),
            from_secret("ASSISTENTE_DB_PASSWORD", "password"),
        ]
        env.append(
            {
                "name": "ASSISTENTE_DATABASE_READ_URL",
                "value": "postgresql://$(ASSISTENTE_DB_USER):$(ASSISTENTE_DB_PASSWORD)"
                f"@{read_host}:5432/$(ASSISTENTE_DB_NAME)",
            }
        )
    return env


def settings_configmap(cr: AssistenteDigital) -> Manifest:
    """Plain settings of the API and the worker (never secrets)."""
    spec = cr.spec
    name = cr.metadata.name
    hours = spec.escalation.service_hours
    data: dict[str, str] = {
        "ASSISTENTE_ENVIRONMENT": "production",
        "ASSISTENTE_RASA_URL": f"http://{name}-nlu:5005",
        "ASSISTENTE_TIMEZONE": hours.timezone,
        "ASSISTENTE_SERVICE_DAYS": ",".join(hours.days),
        "ASSISTENTE_SERVICE_OPEN": hours.start,
        "ASSISTENTE_SERVICE_CLOSE": hours.end,
        "ASSISTENTE_ESCALATION_QUEUE_LIMIT": str(spec.escalation.queue_limit),
        "ASSISTENTE_ESCALATION_MAX_WAIT_MINUTES": str(spec.escalation.max_wait_minutes),
        "ASSISTENTE_RETENTION_DAYS": str(spec.retention.conversation_days),
        "ASSISTENTE_RETENTION_ANONYMIZE_AFTER_DAYS": str(spec.retention.anonymize_after_days),
    }
    if spec.ingress.enabled and spec.ingress.host:
        scheme = "https" if spec.ingress.tls_secret_name else "http"
        data["ASSISTENTE_PUBLIC_BASE_URL"] = f"{scheme}://{spec.ingress.host}"
    if spec.ingress.trusted_proxies:
        data["ASSISTENTE_TRUSTED_PROXIES"] = ",".join(spec.ingress.trusted_proxies)
    if spec.oidc is not None:
        data["ASSISTENTE_OIDC_ISSUER"] = spec.oidc.issuer
        data["ASSISTENTE_OIDC_AUDIENCE"] = spec.oidc.audience
        data["ASSISTENTE_OIDC_JWKS_URL"] = spec.oidc.jwks_url
        data["ASSISTENTE_OIDC_ROLES_CLAIM"] = spec.oidc.roles_claim
        data["ASSISTENTE_OIDC_CLIENT_ID"] = spec.oidc.client_id
        data["ASSISTENTE_OIDC_TEAM_ROLE_PREFIX"] = spec.oidc.team_role_prefix
        data["ASSISTENTE_OIDC_SUPERVISOR_ROLE"] = spec.oidc.supervisor_role
    for channel in CHANNELS:
        enabled = getattr(spec.channels, channel).enabled
        data[f"ASSISTENTE_{channel.upper()}_ENABLED"] = "true" if enabled else "false"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": common.metadata(cr, common.child_name(cr, "settings"), "api"),
        "data": data,
    }


def agents_configmap(cr: AssistenteDigital) -> Manifest:
    agents = cr.spec.agents.model_dump(mode="json", by_alias=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": common.metadata(cr, common.child_name(cr, "agents"), "actions"),
        "data": {"agents.json": json.dumps(agents, indent=2, sort_keys=True) + "\n"},
    }


def rasa_env(cr: AssistenteDigital) -> list[Manifest]:
    """The variables the Rasa image's endpoints.yml reads (tracker store, lock store, actions)."""
    name = cr.metadata.name

    def from_secret(env: str, secret: str, key: str, *, optional: bool = False) -> Manifest:
        ref: Manifest = {"name": secret, "key": key}
        if optional:
            ref["optional"] = True
        return {"name": env, "valueFrom": {"secretKeyRef": ref}}

    security = security_secret(cr)
    postgres = cr.spec.postgres
    assert postgres.rasa_secret_ref is not None  # required by the CRD (and the model)
    rasa_secret = postgres.rasa_secret_ref.name
    env: list[Manifest] = [
        {"name": "RASA_ACTION_ENDPOINT_URL", "value": f"http://{name}-actions:5055/webhook"},
        # Its HTTP API (conversations, model) only with the token; its probes use "/".
        from_secret("RASA_AUTH_TOKEN", security, RASA_TOKEN_KEY),
    ]
    # Rasa's own user and database: it cannot read the app's tables (nor the app's user Rasa's).
    if postgres.mode == PostgresMode.EXTERNAL:
        env += [
            from_secret("RASA_TRACKER_DB_HOST", rasa_secret, "host"),
            from_secret("RASA_TRACKER_DB_PORT", rasa_secret, "port"),
            from_secret("RASA_TRACKER_DB_USER", rasa_secret, "user"),
            from_secret("RASA_TRACKER_DB_PASSWORD", rasa_secret, "password"),
            from_secret("RASA_TRACKER_DB_NAME", rasa_secret, "dbname"),
            from_secret("RASA_TRACKER_DB_LOGIN_DB", rasa_secret, "dbname"),
        ]
    else:
        env += [
            {"name": "RASA_TRACKER_DB_HOST", "value": f"{name}-pg-rw"},
            {"name": "RASA_TRACKER_DB_PORT", "value": "5432"},
            from_secret("RASA_TRACKER_DB_USER", rasa_secret, "username"),
            from_secret("RASA_TRACKER_DB_PASSWORD", rasa_secret, "password"),
            {"name": "RASA_TRACKER_DB_NAME", "value": RASA_DATABASE},
            # Rasa creates its database on first start (its role may CREATEDB), from here.
            {"name": "RASA_TRACKER_DB_LOGIN_DB", "value": "postgres"},
        ]
    env.append({"name": "RASA_LOCK_REDIS_DB", "value": "1"})
    redis = cr.spec.redis
    if redis.mode == StoreMode.EXTERNAL and redis.external is not None:
        secret = redis.external.secret_ref.name
        env += [
            from_secret("RASA_LOCK_REDIS_HOST", secret, "host"),
            from_secret("RASA_LOCK_REDIS_PORT", secret, "port"),
            from_secret("RASA_LOCK_REDIS_PASSWORD", secret, "password", optional=True),
        ]
    else:
        # The lock store (rasa/stores/redis_lock.py) finds the primary through the Sentinels and
        # follows a failover; the host below is only its fallback when no Sentinel is given.
        env += [
            {"name": "RASA_LOCK_REDIS_HOST", "value": f"{name}-redis-0.{name}-redis-headless"},
            {"name": "RASA_LOCK_REDIS_PORT", "value": "6379"},
            from_secret("RASA_LOCK_REDIS_PASSWORD", security, REDIS_PASSWORD_KEY),
            {"name": "RASA_LOCK_REDIS_SENTINELS", "value": f"{name}-redis:26379"},
            {"name": "RASA_LOCK_REDIS_SENTINEL_MASTER", "value": REDIS_SENTINEL_MASTER},
        ]
    return env


def channel_env_from(cr: AssistenteDigital) -> list[Manifest]:
    """Each enabled channel's Secret becomes ASSISTENTE_<CHANNEL>_<KEY> variables."""
    sources: list[Manifest] = []
    for channel in PROVIDER_CHANNELS:
        settings = getattr(cr.spec.channels, channel)
        if settings.enabled and settings.secret_ref is not None:
            sources.append(
                {
                    "prefix": f"ASSISTENTE_{channel.upper()}_",
                    "secretRef": {"name": settings.secret_ref.name},
                }
            )
    return sources


# --- workloads --------------------------------------------------------------------------------


def container_env(
    cr: AssistenteDigital, component: Component
) -> tuple[list[Manifest], list[Manifest]]:
    """(env, envFrom) of the component's main container."""
    base_env: list[Manifest] = [
        # A writable HOME on a read-only root filesystem: the /tmp emptyDir, private to the pod.
        {"name": "HOME", "value": "/tmp"},  # noqa: S108
    ]
    settings_ref = {"configMapRef": {"name": common.child_name(cr, "settings")}}
    if component in ("api", "worker"):
        env = base_env + postgres_env(cr) + redis_env(cr) + app_security_env(cr)
        return env, [settings_ref, *channel_env_from(cr)]
    if component == "nlu":
        return base_env + rasa_env(cr), []
    return [*base_env, *actions_env(cr)], []


def actions_env(cr: AssistenteDigital) -> list[Manifest]:
    """The action server's settings (rasa/actions/settings.py): the agents file and DataJud."""
    env: list[Manifest] = [
        {"name": "AGENTS_FILE", "value": AGENTS_FILE},
        {"name": "ACTIONS_METRICS_PORT", "value": str(ACTIONS_METRICS_PORT)},
    ]
    datajud = cr.spec.actions.datajud
    if datajud is not None:
        ref = datajud.api_key_secret_ref
        env.append(
            {
                "name": "DATAJUD_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
        if datajud.base_url:
            env.append({"name": "DATAJUD_BASE_URL", "value": datajud.base_url})
    return env


def config_inputs(cr: AssistenteDigital, component: Component) -> Any:
    """The configuration a component's pods read at start, for the input-hash annotation."""
    if component in ("api", "worker"):
        return [settings_configmap(cr)["data"], channel_env_from(cr)]
    if component == "nlu":
        return []  # everything Rasa reads is in its pod template (env)
    return [agents_configmap(cr)["data"]]


def config_volumes(
    cr: AssistenteDigital, component: Component
) -> tuple[list[Manifest], list[Manifest]]:
    """Extra volumes: the agents file for the action server, Rasa's writable cache dir."""
    if component == "actions":
        volume = {"name": "config", "configMap": {"name": common.child_name(cr, "agents")}}
        mount = {"name": "config", "mountPath": AGENTS_FILE.rsplit("/", 1)[0], "readOnly": True}
        return [volume], [mount]
    if component == "nlu":
        volume = {"name": "rasa-cache", "emptyDir": {"sizeLimit": "1Gi"}}
        return [volume], [{"name": "rasa-cache", "mountPath": "/app/.rasa"}]
    return [], []


def migrations_container(api: Manifest) -> Manifest:
    """Alembic before every API pod takes traffic: the same image, settings and database. Pods
    of a rollout start together; an advisory lock in the app lets one migrate while the others
    wait, and a new release's pods migrate before serving it."""
    init: Manifest = {
        key: api[key]
        for key in ("image", "imagePullPolicy", "env", "envFrom", "resources", "securityContext")
        if key in api
    }
    return {
        "name": "migrate",
        **init,
        "args": ["migrate"],
        "volumeMounts": [m for m in api["volumeMounts"] if m["name"] == "tmp"],
    }


def deployment(cr: AssistenteDigital, component: Component) -> Manifest:
    shape = SHAPES[component]
    spec = workload_spec(cr, component)
    env, env_from = container_env(cr, component)
    tmp_vol, tmp_mount = common.tmp_volume()
    cfg_vols, cfg_mounts = config_volumes(cr, component)
    container: Manifest = {
        "name": component,
        "image": image_for(cr, component),
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "http", "containerPort": shape.port, "protocol": "TCP"},
            *(
                [{"name": "metrics", "containerPort": ACTIONS_METRICS_PORT, "protocol": "TCP"}]
                if component == "actions"
                else []
            ),
        ],
        "env": env,
        "resources": common.resources(spec.resources),
        "securityContext": common.container_security_context(),
        "volumeMounts": [tmp_mount, *cfg_mounts],
        **common.http_probes(
            "http",
            ready_path=shape.ready_path,
            live_path=shape.live_path,
            startup_seconds=shape.startup_seconds,
        ),
    }
    if env_from:
        container["envFrom"] = env_from
    if shape.args:
        container["args"] = list(shape.args)
    init_containers = [migrations_container(container)] if component == "api" else []
    selector = common.selector_labels(cr, component)
    deploy_spec: Manifest = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        },
        "template": {
            "metadata": {
                "labels": common.pod_labels(cr, component),
                "annotations": {
                    common.INPUT_HASH_ANNOTATION: common.input_hash(config_inputs(cr, component)),
                },
            },
            "spec": {
                "serviceAccountName": common.child_name(cr, component),
                "automountServiceAccountToken": False,
                "securityContext": common.pod_security_context(shape.uid),
                "terminationGracePeriodSeconds": 30,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector},
                    }
                    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                ],
                **({"initContainers": init_containers} if init_containers else {}),
                "containers": [container],
                "volumes": [tmp_vol, *cfg_vols],
                **common.placement(cr.spec.placement.application),
            },
        },
    }
    if not spec.autoscaling.enabled:
        # Under an HPA the field is left out entirely, so server-side apply never resets it.
        deploy_spec["replicas"] = spec.replicas
    ref = deployment_ref(cr, component)
    return {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "metadata": common.metadata(cr, ref.name, component),
        "spec": deploy_spec,
    }


def service(cr: AssistenteDigital, component: Component) -> Manifest | None:
    shape = SHAPES[component]
    if not shape.has_service:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(cr, common.child_name(cr, component), component),
        "spec": {
            "type": "ClusterIP",
            "selector": common.selector_labels(cr, component),
            "ports": [
                {"name": "http", "port": shape.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def service_account(cr: AssistenteDigital, component: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": common.metadata(cr, common.child_name(cr, component), component),
        "automountServiceAccountToken": False,
    }


def hpa(cr: AssistenteDigital, component: Component) -> Manifest | None:
    autoscaling = workload_spec(cr, component).autoscaling
    if not autoscaling.enabled:
        return None
    name = common.child_name(cr, component)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": common.metadata(cr, name, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def pdb(cr: AssistenteDigital, component: str, minimum: int) -> Manifest | None:
    """A disruption budget that can always be satisfied.

    With fewer than two pods any budget either blocks node drains forever or protects nothing,
    so none is rendered. Otherwise one pod may go at a time, and pods that are not healthy
    anyway may always be evicted (so a crash-looping pod never blocks a drain).
    """
    if minimum < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": common.metadata(cr, common.child_name(cr, component), component),
        "spec": {
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": common.selector_labels(cr, component)},
        },
    }


def build(cr: AssistenteDigital) -> list[Manifest]:
    objects: list[Manifest] = [settings_configmap(cr), agents_configmap(cr)]
    for component in SHAPES:
        objects.append(service_account(cr, component))
        objects.append(deployment(cr, component))
        for optional in (
            service(cr, component),
            hpa(cr, component),
            pdb(cr, component, min_replicas(cr, component)),
        ):
            if optional is not None:
                objects.append(optional)
    return objects
