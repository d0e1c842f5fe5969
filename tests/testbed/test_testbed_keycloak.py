"""The real Keycloak of the test bed: the realm from the repository, clerks who sign in with the
authorization code + PKCE flow, tokens the API can verify against the JWKS, passwords that exist
only at run time, and nothing listening beyond loopback."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
import pytest
from assistente_testbed.keycloak import (
    API_AUDIENCE,
    CONSOLE_CLIENT_ID,
    DEMO_CLERK,
    KeycloakServer,
    default_realm_file,
)
from assistente_testbed.process import ServiceError

TEAMS = {"suporte_tecnico", "servicos_portal", "orientacao_processual", "geral"}


def _listeners_of(pid: int) -> list[str]:
    """Local addresses of the TCP listeners of `pid` and its descendants (kc.sh runs java)."""
    tree = {pid}
    for line in subprocess.run(
        ["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        child, parent = (int(x) for x in line.split())
        if parent in tree:
            tree.add(child)
    addresses = []
    for line in subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        if any(int(p) in tree for p in re.findall(r"pid=(\d+)", line)):
            addresses.append(line.split()[3])
    return addresses


def _verified_claims(server: KeycloakServer, token: str) -> dict[str, Any]:
    """Check the token exactly as the API does: signature from the JWKS, issuer, audience."""
    signing_key = jwt.PyJWKClient(server.jwks_url).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, signing_key.key, algorithms=["RS256"], audience=API_AUDIENCE, issuer=server.issuer
    )
    return claims


def test_realm_file_holds_no_password() -> None:
    realm = json.loads(default_realm_file().read_text())
    values = [c["value"] for user in realm["users"] for c in user["credentials"]]
    assert values, "the realm has demo clerks"
    assert all(re.fullmatch(r"\$\{ASSISTENTE_DEMO_PASSWORD_[A-Z0-9_]+\}", v) for v in values)


def test_keycloak_listens_on_loopback_only(keycloak_server: KeycloakServer) -> None:
    assert keycloak_server.pid is not None
    listeners = _listeners_of(keycloak_server.pid)
    assert f"[::ffff:127.0.0.1]:{keycloak_server.port}" in listeners or (
        f"127.0.0.1:{keycloak_server.port}" in listeners
    ), listeners
    hosts = {address.rsplit(":", 1)[0] for address in listeners}
    assert hosts <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, listeners


def test_generated_passwords_are_private_and_distinct(keycloak_server: KeycloakServer) -> None:
    credentials = keycloak_server.base_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    passwords = [clerk.password for clerk in keycloak_server.clerks.values()]
    assert len(set(passwords)) == len(passwords) >= 5
    assert all(len(p) >= 16 for p in passwords)
    realm_text = default_realm_file().read_text()
    assert not any(p in realm_text for p in passwords)


def test_a_clerk_signs_in_with_pkce_and_gets_team_roles(keycloak_server: KeycloakServer) -> None:
    tokens = keycloak_server.login("ana.suporte")
    claims = _verified_claims(keycloak_server, tokens["access_token"])
    assert claims["preferred_username"] == "ana.suporte"
    assert claims["azp"] == CONSOLE_CLIENT_ID
    roles = set(claims["realm_access"]["roles"])
    # Team roles are composites of `agent`, which the agent API requires.
    assert {"agent", "equipe:suporte_tecnico"} <= roles
    assert "supervisor" not in roles
    assert tokens["refresh_token"]


def test_every_team_has_a_clerk_and_a_supervisor_sees_all(keycloak_server: KeycloakServer) -> None:
    covered = {team for clerk in keycloak_server.clerks.values() for team in clerk.teams}
    assert covered == TEAMS
    supervisor = next(c for c in keycloak_server.clerks.values() if c.is_supervisor)
    claims = _verified_claims(keycloak_server, keycloak_server.access_token(supervisor.username))
    assert {"supervisor", "agent"} <= set(claims["realm_access"]["roles"])
    assert set(keycloak_server.clerk(DEMO_CLERK).teams) == TEAMS


def test_a_wrong_password_is_refused(keycloak_server: KeycloakServer) -> None:
    with pytest.raises(ServiceError, match=r"login of 'bruno\.portal' failed"):
        keycloak_server.login("bruno.portal", password="not-the-password")


def test_only_the_console_address_is_a_valid_redirect(keycloak_server: KeycloakServer) -> None:
    outside = keycloak_server.console_url.rsplit("/", 1)[0] + "/outra-coisa/"
    query = urllib.parse.urlencode(
        {
            "client_id": CONSOLE_CLIENT_ID,
            "redirect_uri": outside,
            "response_type": "code",
            "scope": "openid",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
        }
    )
    url = f"{keycloak_server.issuer}/protocol/openid-connect/auth?{query}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 (loopback)
    assert refused.value.code == 400


def _refresh(
    server: KeycloakServer, refresh_token: str, origin: str | None = None
) -> tuple[int, Any, dict[str, Any]]:
    """A refresh-token grant as the console's script sends it: (status, headers, body)."""
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{server.issuer}/protocol/openid-connect/token",
        data=urllib.parse.urlencode(
            {
                "grant_type": "refresh_token",
                "client_id": CONSOLE_CLIENT_ID,
                "refresh_token": refresh_token,
            }
        ).encode(),
        headers={"Origin": origin} if origin else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_browsers_may_call_the_token_endpoint_from_the_console_origin_only(
    keycloak_server: KeycloakServer,
) -> None:
    parts = urllib.parse.urlsplit(keycloak_server.console_url)
    console_origin = f"{parts.scheme}://{parts.netloc}"
    refresh_token = keycloak_server.login("bruno.portal")["refresh_token"]

    status, headers, body = _refresh(keycloak_server, refresh_token, console_origin)
    assert status == 200, body
    assert headers.get("Access-Control-Allow-Origin") == console_origin

    status, headers, body = _refresh(keycloak_server, body["refresh_token"], "http://127.0.0.1:1")
    assert headers.get("Access-Control-Allow-Origin") is None, (status, body)


def test_ended_sessions_cannot_be_refreshed(keycloak_server: KeycloakServer) -> None:
    """What the console meets when a session expires or an administrator ends it."""
    tokens = keycloak_server.login("carla.processual")
    keycloak_server.end_sessions("carla.processual")
    status, _, body = _refresh(keycloak_server, tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
