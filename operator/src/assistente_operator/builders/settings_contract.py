"""Which component setting consumes each environment variable and mounted file a builder writes.

One row per (component, key). A key is an environment variable, a prefix ending in ``*`` for a
Secret loaded with ``envFrom`` (each of its keys becomes a variable), or a mount path. ``reads``
says who reads it:

* ``app``: the field of ``assistente_app.settings.Settings`` named like the variable without its
  ``ASSISTENTE_`` prefix (for a prefix: the channel settings class whose fields it covers);
* ``actions``: a variable ``rasa/actions/settings.py`` reads;
* ``rasa``: a variable of ``rasa/endpoints.yml`` or the Rasa image's entry point;
* ``kubernetes``: only there for ``$(VAR)`` expansion in another variable of the container;
* ``process``: the container's runtime itself (``HOME``), or a scratch directory.

``operator/tests/test_operator_settings_contract.py`` renders the children and fails when a key
has no row here, when a row names a setting its component does not read, or when a setting a
component requires in production has no source in the custom resource. docs/operator.md shows
the same table to people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assistente_operator.models import Component

Reader = Literal["app", "actions", "rasa", "kubernetes", "process"]


@dataclass(frozen=True)
class SettingSource:
    component: Component
    key: str
    reads: Reader
    source: str
    """Where the value comes from: the custom resource's field, a Secret, or the operator."""


def _both(key: str, source: str, reads: Reader = "app") -> tuple[SettingSource, ...]:
    return (SettingSource("api", key, reads, source), SettingSource("worker", key, reads, source))


_APP: tuple[SettingSource, ...] = (
    *_both("ASSISTENTE_ENVIRONMENT", "always production"),
    *_both("ASSISTENTE_RASA_URL", "the nlu Service"),
    *_both("ASSISTENTE_TIMEZONE", "escalation.serviceHours.timezone"),
    *_both("ASSISTENTE_SERVICE_DAYS", "escalation.serviceHours.days"),
    *_both("ASSISTENTE_SERVICE_OPEN", "escalation.serviceHours.start"),
    *_both("ASSISTENTE_SERVICE_CLOSE", "escalation.serviceHours.end"),
    *_both("ASSISTENTE_ESCALATION_QUEUE_LIMIT", "escalation.queueLimit"),
    *_both("ASSISTENTE_ESCALATION_MAX_WAIT_MINUTES", "escalation.maxWaitMinutes"),
    *_both("ASSISTENTE_RETENTION_DAYS", "retention.conversationDays"),
    *_both("ASSISTENTE_RETENTION_ANONYMIZE_AFTER_DAYS", "retention.anonymizeAfterDays"),
    *_both("ASSISTENTE_PUBLIC_BASE_URL", "ingress.host (+ https with ingress.tlsSecretName)"),
    *_both("ASSISTENTE_TRUSTED_PROXIES", "ingress.trustedProxies"),
    *_both("ASSISTENTE_OIDC_ISSUER", "oidc.issuer"),
    *_both("ASSISTENTE_OIDC_AUDIENCE", "oidc.audience"),
    *_both("ASSISTENTE_OIDC_JWKS_URL", "oidc.jwksUrl"),
    *_both("ASSISTENTE_OIDC_ROLES_CLAIM", "oidc.rolesClaim"),
    *_both("ASSISTENTE_OIDC_CLIENT_ID", "oidc.clientId"),
    *_both("ASSISTENTE_OIDC_TEAM_ROLE_PREFIX", "oidc.teamRolePrefix"),
    *_both("ASSISTENTE_OIDC_SUPERVISOR_ROLE", "oidc.supervisorRole"),
    *(
        row
        for channel in ("web", "mobile", "whatsapp", "telegram", "voice")
        for row in _both(f"ASSISTENTE_{channel.upper()}_ENABLED", f"channels.{channel}.enabled")
    ),
    *(
        row
        for channel in ("whatsapp", "telegram", "voice")
        for row in _both(f"ASSISTENTE_{channel.upper()}_*", f"channels.{channel}.secretRef")
    ),
    *_both("ASSISTENTE_DATABASE_URL", "postgres: the app Secret's uri"),
    *_both("ASSISTENTE_DATABASE_READ_URL", "postgres: ro-uri, or the -pg-ro Service"),
    *(
        row
        for part in ("NAME", "USER", "PASSWORD")
        for row in _both(
            f"ASSISTENTE_DB_{part}", "postgres.cloudnativepg: the app Secret", "kubernetes"
        )
    ),
    *_both("ASSISTENTE_REDIS_URL", "redis: the in-cluster master or external.secretRef url"),
    *_both("ASSISTENTE_REDIS_SENTINELS", "redis.inCluster: the Sentinel Service"),
    *_both("ASSISTENTE_REDIS_SENTINEL_MASTER", "redis.inCluster: the operator"),
    *_both("ASSISTENTE_REDIS_PASSWORD", "redis.inCluster: security.secretRef redis-password"),
    *_both("ASSISTENTE_LGPD_AUDIT_KEY", "security.secretRef: lgpd-audit-key"),
    *_both(
        "ASSISTENTE_RASA_TRACKER_DATABASE_URL",
        "postgres.rasaSecretRef (Rasa's own user and database), for LGPD erasure",
    ),
    *(
        row
        for part in ("USER", "PASSWORD", "HOST", "PORT", "NAME")
        for row in _both(f"ASSISTENTE_RASA_DB_{part}", "postgres.rasaSecretRef", "kubernetes")
    ),
    *_both("HOME", "the /tmp emptyDir", "process"),
    *_both("/tmp", "an emptyDir (read-only root filesystem)", "process"),  # noqa: S108
)

_NLU: tuple[SettingSource, ...] = (
    SettingSource("nlu", "HOME", "process", "the /tmp emptyDir"),
    SettingSource("nlu", "/tmp", "process", "an emptyDir"),  # noqa: S108
    SettingSource("nlu", "/app/.rasa", "process", "an emptyDir for Rasa's cache"),
    SettingSource("nlu", "RASA_ACTION_ENDPOINT_URL", "rasa", "the actions Service"),
    SettingSource("nlu", "RASA_AUTH_TOKEN", "rasa", "security.secretRef: rasa-token"),
    *(
        SettingSource(
            "nlu",
            f"RASA_TRACKER_DB_{part}",
            "rasa",
            "postgres.rasaSecretRef (Rasa's own user; the -pg-rw Service with cloudnativepg)",
        )
        for part in ("HOST", "PORT", "USER", "PASSWORD", "NAME", "LOGIN_DB")
    ),
    *(
        SettingSource(
            "nlu", f"RASA_LOCK_REDIS_{part}", "rasa", "redis (database 1; password as the app's)"
        )
        for part in ("HOST", "PORT", "PASSWORD", "DB")
    ),
    SettingSource("nlu", "RASA_LOCK_REDIS_SENTINELS", "rasa", "redis (the Sentinels' Service)"),
    SettingSource(
        "nlu", "RASA_LOCK_REDIS_SENTINEL_MASTER", "rasa", "redis (the Sentinels' master name)"
    ),
)

_ACTIONS: tuple[SettingSource, ...] = (
    SettingSource("actions", "HOME", "process", "the /tmp emptyDir"),
    SettingSource("actions", "/tmp", "process", "an emptyDir"),  # noqa: S108
    SettingSource("actions", "AGENTS_FILE", "actions", "agents (the -agents ConfigMap)"),
    SettingSource("actions", "/etc/assistente", "actions", "agents: the -agents ConfigMap"),
    SettingSource("actions", "DATAJUD_API_KEY", "actions", "actions.datajud.apiKeySecretRef"),
    SettingSource("actions", "DATAJUD_BASE_URL", "actions", "actions.datajud.baseUrl"),
    # Read by rasa/rasa_sdk_plugins (the action server's /metrics), not by the actions' settings.
    SettingSource(
        "actions", "ACTIONS_METRICS_PORT", "process", "the port PodMonitor -actions scrapes"
    ),
)

SETTINGS_CONTRACT: tuple[SettingSource, ...] = (*_APP, *_NLU, *_ACTIONS)


def row(component: Component, key: str) -> SettingSource | None:
    for entry in SETTINGS_CONTRACT:
        if entry.component == component and entry.key == key:
            return entry
    return None
