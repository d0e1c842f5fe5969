"""The long-lived resources of a process, built in one place for the API and the worker.

Built at start-up (the API's lifespan, the worker's ``run``), never at import time. Building opens
no connection: the pools connect on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from assistente_app.auth.oidc import JwksVerifier
from assistente_app.core.db import Database, create_database
from assistente_app.core.logging import register_secrets
from assistente_app.core.rasa_tracker import RasaTracker
from assistente_app.core.redis import create_redis
from assistente_app.core.settings import CoreSettings, secret_values
from assistente_app.queue.streams import Queues, build_queues
from assistente_app.realtime.hub import EventHub, EventPublisher


@dataclass(kw_only=True)
class Resources:
    settings: CoreSettings
    db: Database
    redis: Redis
    queues: Queues
    http: httpx.AsyncClient
    """For calls to other services (Rasa, channel providers)."""
    verifier: JwksVerifier | None
    """Agent and admin tokens; ``None`` without OIDC settings (those APIs then answer 503)."""
    events: EventPublisher
    """Events for the WebSockets of every API replica (citizens' and clerks')."""
    rasa_tracker: RasaTracker | None = None
    """Rasa's tracker database, which LGPD erasure and retention clean too."""
    hub: EventHub | None = None
    """Started by the API only: it fans events out to this replica's WebSockets."""
    enabled_channels: frozenset[str] = frozenset()
    """Names of the channels switched on (``channels.registry.enabled_channels``)."""


def build_resources(settings: CoreSettings) -> Resources:
    register_secrets(secret_values(settings))
    redis = create_redis(settings)
    verifier = None
    if settings.oidc_jwks_url or settings.oidc_issuer:
        verifier = JwksVerifier(
            jwks_url=settings.oidc_jwks_url,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            roles_claim=settings.oidc_roles_claim,
            cache_s=settings.oidc_jwks_cache_s,
        )
    return Resources(
        settings=settings,
        db=create_database(settings),
        redis=redis,
        queues=queues_for(redis, settings),
        http=httpx.AsyncClient(timeout=settings.outbound_timeout_s),
        verifier=verifier,
        events=EventPublisher(redis, settings.queue_prefix),
        rasa_tracker=(
            RasaTracker(settings.rasa_tracker_database_url)
            if settings.rasa_tracker_database_url
            else None
        ),
    )


async def close_resources(resources: Resources) -> None:
    if resources.hub is not None:
        await resources.hub.stop()
    if resources.verifier is not None:
        await resources.verifier.aclose()
    await resources.http.aclose()
    await resources.db.dispose()
    if resources.rasa_tracker is not None:
        await resources.rasa_tracker.dispose()
    await resources.redis.aclose()


def queues_for(redis: Redis, settings: CoreSettings) -> Queues:
    """The API's and the worker's view of the streams, from the same settings."""
    return build_queues(
        redis,
        prefix=settings.queue_prefix,
        partitions=settings.queue_partitions,
        max_length=settings.queue_max_length,
        min_replicas_ack=settings.redis_min_replicas_ack,
    )
