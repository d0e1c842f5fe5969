"""Long-lived resources built in the lifespan (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from assistente_app.auth.oidc import JwksVerifier
from assistente_app.conversations.realtime import EventHub
from assistente_app.core.db import Database, create_database
from assistente_app.core.redis import create_redis
from assistente_app.core.settings import Settings
from assistente_app.queue.streams import Queues, build_queues


@dataclass
class Resources:
    settings: Settings
    db: Database
    redis: Redis
    queues: Queues
    verifier: JwksVerifier | None
    hub: EventHub | None = None


def build_resources(settings: Settings) -> Resources:
    redis = create_redis(settings)
    verifier = None
    if settings.oidc_jwks_url:
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
        verifier=verifier,
    )


async def close_resources(resources: Resources) -> None:
    if resources.hub is not None:
        await resources.hub.stop()
    await resources.db.dispose()
    await resources.redis.aclose()


def queues_for(redis: Redis, settings: Settings) -> Queues:
    """The API's and the worker's view of the streams, from the same settings."""
    return build_queues(
        redis,
        prefix=settings.queue_prefix,
        partitions=settings.queue_partitions,
        max_length=settings.queue_max_length,
        min_replicas_ack=settings.redis_min_replicas_ack,
    )
