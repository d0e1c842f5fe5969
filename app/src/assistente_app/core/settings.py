"""The settings every part of the app shares, read from ``ASSISTENTE_*`` environment variables.

Each channel adds its own settings class (``channels/<name>/settings.py``);
``assistente_app.settings`` puts them all together into the one ``Settings`` the API and the
worker run with.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# What a production deployment must set explicitly (the defaults only fit a laptop). The
# operator's settings contract test checks that its builders provide each of them.
REQUIRED_IN_PRODUCTION = (
    "database_url",
    "redis_url",
    "rasa_url",
    "oidc_issuer",
    "oidc_audience",
    "oidc_jwks_url",
    "rasa_tracker_database_url",
    "lgpd_audit_key",
)


# Every settings class of the app reads the same environment: ASSISTENTE_<FIELD NAME>.
SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix="ASSISTENTE_", env_ignore_empty=True, extra="ignore"
)


class CoreSettings(BaseSettings):
    """The knobs of the API and the worker that are not a channel's. Secrets are ``SecretStr``
    so they never print."""

    model_config = SETTINGS_CONFIG

    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses to start without OIDC"
    )
    log_level: str = "INFO"

    # Storage
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/assistente"
    database_read_url: str | None = None
    database_pool_size: int = 10
    database_pool_pre_ping: bool = Field(
        default=True,
        description="Test pooled connections before use (~0.3 ms CPU/request; survives failover)",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_sentinels: str | None = Field(
        default=None, description="host:port,host:port of Sentinels; enables Sentinel discovery"
    )
    redis_sentinel_master: str = "mymaster"
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password of Redis and its Sentinels (else the one in REDIS_URL, if any)",
    )
    redis_min_replicas_ack: int = Field(
        default=0, description="Replicas that must hold a queued entry before the API answers 202"
    )

    # Queue
    queue_prefix: str = "assistente"
    queue_partitions: int = Field(default=1, ge=1, le=256)
    queue_max_length: int = Field(default=100_000, description="Backlog above which we answer 503")
    queue_max_failures: int = Field(default=5, ge=1)
    queue_reclaim_idle_ms: int = Field(default=30_000, ge=100)
    queue_block_ms: int = 2_000
    queue_sweep_after_s: int = Field(default=120, description="Re-enqueue stored-but-unqueued age")
    worker_concurrency: int = Field(default=16, ge=1)
    worker_backoff_max_s: float = 30.0
    worker_metrics_port: int | None = 9101

    # Rasa
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_s: float = 30.0

    # HTTP limits
    max_body_bytes: int = 64 * 1024
    max_message_chars: int = 4_000
    trusted_proxies: str = Field(
        default="127.0.0.1/32,::1/128",
        description="CIDRs of the proxies (the Ingress) whose X-Forwarded-For is believed",
    )
    rate_limit_per_minute: int = Field(
        default=30, description="Messages per minute per conversation or channel sender"
    )

    # Protocols
    timezone: str = "America/Sao_Paulo"

    # Human level 2
    service_days: str = "mon,tue,wed,thu,fri"
    service_open: dt.time = dt.time(8, 0)
    service_close: dt.time = dt.time(18, 0)
    average_handle_minutes: float = 6.0
    # Read for the clerk console's admission rules (escalation.service.escalate is the hook).
    escalation_queue_limit: int = Field(
        default=500, ge=1, description="Conversations waiting per team before new ones are refused"
    )
    escalation_max_wait_minutes: int = Field(
        default=60,
        ge=1,
        description=(
            "Wait after which a queued citizen is offered to come back (and the level-2 alert's "
            "limit, exported as a metric)"
        ),
    )

    # Auth (OIDC for agents and admins)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_roles_claim: str = "realm_access.roles"
    oidc_jwks_cache_s: int = 300
    oidc_client_id: str = Field(
        default="assistente-console", description="The console's public client at the issuer"
    )
    oidc_team_role_prefix: str = Field(
        default="equipe:", description="Realm role <prefix><team> puts a clerk on a team"
    )
    oidc_supervisor_role: str = "supervisor"

    # Channels (each channel's own settings are in channels/<name>/settings.py)
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Where citizens and providers reach the API"
    )
    outbound_timeout_s: float = Field(default=10.0, description="Calls to channel APIs")

    # LGPD
    rasa_tracker_database_url: str | None = Field(
        default=None,
        description="Rasa's tracker store (its own database and user): erasure and retention "
        "delete its events too",
    )
    lgpd_audit_key: SecretStr | None = Field(
        default=None,
        description="Key of the audit trail's HMAC of subject identifiers (phone numbers are "
        "few enough to enumerate an unkeyed hash)",
    )
    retention_days: int = Field(default=180, ge=1)
    retention_anonymize_after_days: int = Field(
        default=30, ge=0, description="Closed conversations lose their personal data after this"
    )
    retention_interval_s: int = 3600

    @field_validator("database_url", "database_read_url", "rasa_tracker_database_url")
    @classmethod
    def _use_asyncpg(cls, value: str | None) -> str | None:
        # Operators paste plain libpq DSNs; SQLAlchemy needs the driver in the scheme.
        if value and value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        return value

    @field_validator("service_days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        days = [d.strip().lower() for d in value.split(",") if d.strip()]
        unknown = [d for d in days if d not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; use {','.join(WEEKDAYS)}")
        return ",".join(days)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                ipaddress.ip_network(item.strip(), strict=False)  # ValueError names the bad one
        return value

    @model_validator(mode="after")
    def _production_needs_its_settings(self) -> CoreSettings:
        # Without OIDC the agent and admin APIs answer 503, and localhost defaults reach nothing
        # in a cluster: in production that is a misconfiguration to catch at start-up.
        if self.environment == "production":
            missing = [
                f"ASSISTENTE_{name.upper()}"
                for name in REQUIRED_IN_PRODUCTION
                if name not in self.model_fields_set or not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"ASSISTENTE_ENVIRONMENT=production exige {', '.join(missing)}: sem emissor "
                    "e audiência, qualquer token assinado pelo provedor de identidade (de outro "
                    "cliente ou realm) seria aceito, e os endereços padrão só servem num notebook"
                )
        return self

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def open_weekdays(self) -> set[int]:
        return {WEEKDAYS.index(d) for d in self.service_days.split(",") if d}


def secret_values(settings: BaseSettings) -> list[str]:
    """The clear values of every ``SecretStr`` setting (for ``core.logging.register_secrets``),
    and the passwords inside the storage URLs."""
    values = [
        value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    ]
    for name in ("database_url", "database_read_url", "redis_url", "rasa_tracker_database_url"):
        url = getattr(settings, name, None)
        if isinstance(url, str) and (password := urlsplit(url).password):
            values.append(password)
    return values
