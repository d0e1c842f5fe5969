"""OIDC access-token validation against the issuer's JWKS (e.g. Keycloak), the issuer's
discovery document, and what a token says about a clerk (teams, supervision)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from assistente_app.core.errors import (
    ForbiddenError,
    NotAuthenticatedError,
    ServiceUnavailableError,
)

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    name: str | None = None
    expires_at: float | None = None
    """The token's ``exp`` (seconds since the epoch): long-lived sockets close after it."""


@dataclass(frozen=True)
class Clerk:
    """A signed-in clerk as the console sees them: their teams come from realm roles."""

    principal: Principal
    teams: frozenset[str]
    supervisor: bool
    admin: bool

    @property
    def subject(self) -> str:
        return self.principal.subject

    @property
    def name(self) -> str:
        return self.principal.name or "Atendente"

    def sees_team(self, team: str | None) -> bool:
        """Supervisors and admins see every queue; a clerk sees their teams'."""
        return self.supervisor or self.admin or (team is not None and team in self.teams)


def clerk_of(
    principal: Principal, *, known_teams: tuple[str, ...], team_prefix: str, supervisor_role: str
) -> Clerk:
    teams = frozenset(team for team in known_teams if f"{team_prefix}{team}" in principal.roles)
    supervisor = supervisor_role in principal.roles
    admin = "admin" in principal.roles
    return Clerk(principal, teams=teams, supervisor=supervisor, admin=admin)


class OidcDiscovery:
    """The issuer's ``/.well-known/openid-configuration``, fetched once and kept (it lists the
    JWKS and the endpoints the console signs in with)."""

    def __init__(self, issuer: str, *, cache_s: float = 3600.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.cache_s = cache_s
        self._document: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def document(self, http: httpx.AsyncClient | None = None) -> dict[str, Any]:
        async with self._lock:
            if self._document and time.monotonic() - self._fetched_at < self.cache_s:
                return self._document
            client = http or httpx.AsyncClient(timeout=5.0)
            try:
                response = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                if self._document:
                    log.warning("OIDC discovery refresh failed, keeping the last one: %s", exc)
                    return self._document
                raise ServiceUnavailableError("Provedor de identidade indisponível.") from exc
            finally:
                if http is None:
                    await client.aclose()
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                raise ServiceUnavailableError(
                    "O provedor de identidade anunciou outro emissor (issuer) na descoberta OIDC."
                )
            self._document = document
            self._fetched_at = time.monotonic()
            return document


class JwksVerifier:
    """Verifies access tokens against the issuer's JWKS, cached for ``cache_s``.

    The key set is refreshed in the background when it goes stale, and requests keep using the
    cached keys meanwhile: an identity provider that is down or slow costs nothing while the
    keys it published still verify the tokens. Only a token naming an unknown ``kid`` (key
    rotation) waits for a fetch, and fetches are shared by concurrent requests and spaced at
    least ``min_refresh_s`` apart, also after a failure.
    """

    def __init__(
        self,
        *,
        jwks_url: str | None,
        issuer: str | None,
        audience: str | None,
        roles_claim: str = "realm_access.roles",
        cache_s: int = 300,
        min_refresh_s: float = 10.0,
        fetch_timeout_s: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if jwks_url is None and issuer is None:
            raise ValueError("an OIDC issuer or a JWKS URL is required")
        self.min_refresh_s = min_refresh_s
        self.fetch_timeout_s = fetch_timeout_s
        self.jwks_url = jwks_url
        self.discovery = OidcDiscovery(issuer) if issuer else None
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self.cache_s = cache_s
        self._http = http
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._fetch: asyncio.Task[None] | None = None
        self.fetches = 0
        """How many times the key set was requested (for tests and metrics)."""

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._fetched_at >= self.cache_s

    def _start_fetch(self) -> asyncio.Task[None] | None:
        """The fetch in flight, or a new one unless the last attempt was too recent."""
        if self._fetch is not None and not self._fetch.done():
            return self._fetch
        if time.monotonic() - self._attempted_at < self.min_refresh_s:
            return None
        self._attempted_at = time.monotonic()
        self._fetch = asyncio.create_task(self._download(), name="jwks-fetch")
        self._fetch.add_done_callback(_consume_exception)
        return self._fetch

    async def _download(self) -> None:
        self.fetches += 1
        client = self._http or httpx.AsyncClient(timeout=self.fetch_timeout_s)
        try:
            if self.jwks_url is None:
                # Without an explicit URL the key set is found through the issuer's discovery.
                assert self.discovery is not None
                self.jwks_url = str((await self.discovery.document(client))["jwks_uri"])
            response = await client.get(self.jwks_url, timeout=self.fetch_timeout_s)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError, KeyError, ServiceUnavailableError) as exc:
            log.warning("JWKS fetch failed: %s", type(exc).__name__)
            raise
        finally:
            if self._http is None:
                await client.aclose()
        keys: dict[str, PyJWK] = {}
        for item in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(item, dict) or item.get("use", "sig") != "sig":
                continue
            try:
                keys[str(item.get("kid", ""))] = PyJWK.from_dict(item)
            except jwt.PyJWTError:
                log.warning("ignoring unusable JWK kid=%s", item.get("kid"))
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def _wait_for_fetch(self) -> None:
        fetch = self._start_fetch() or self._fetch
        if fetch is None:
            return
        # Shielded: one caller giving up must not cancel the fetch the others wait for.
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, ServiceUnavailableError):
            await asyncio.shield(fetch)

    async def _key_for(self, kid: str) -> PyJWK:
        if not self._keys:
            await self._wait_for_fetch()
            if not self._keys:
                raise ServiceUnavailableError("Provedor de identidade indisponível.")
        elif self.stale:
            self._start_fetch()  # in the background: the cached keys still verify tokens
        if kid not in self._keys:
            await self._wait_for_fetch()  # a rotated key, at most every min_refresh_s
        key = self._keys.get(kid)
        if key is None:
            raise NotAuthenticatedError("Token assinado por chave desconhecida.")
        return key

    async def aclose(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._fetch

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthenticatedError("Token de acesso inválido.") from exc
        key = await self._key_for(str(header.get("kid", "")))
        required = ["exp", "sub"]
        required += ["iss"] if self.issuer is not None else []
        required += ["aud"] if self.audience is not None else []
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticatedError("Token de acesso expirado.") from exc
        except jwt.PyJWTError as exc:
            raise NotAuthenticatedError(f"Token de acesso inválido: {exc}.") from exc
        return Principal(
            subject=str(claims["sub"]),
            roles=frozenset(_roles(claims, self.roles_claim)),
            name=claims.get("name") or claims.get("preferred_username"),
            expires_at=float(claims["exp"]),
        )


def _consume_exception(task: asyncio.Task[None]) -> None:
    # A background fetch that failed was logged; its exception must not be reported as lost.
    if not task.cancelled():
        task.exception()


def _roles(claims: dict[str, Any], path: str) -> list[str]:
    """The roles at ``path`` (``OIDC_ROLES_CLAIM``) and nowhere else: a second claim merged
    in would let whoever controls it (another client's mapper, a user attribute) grant roles."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return [str(r) for r in value] if isinstance(value, list) else []


def require_role(principal: Principal, *roles: str) -> None:
    if not principal.roles.intersection(roles):
        raise ForbiddenError(f"Acesso restrito ao(s) papel(éis): {', '.join(roles)}.")
