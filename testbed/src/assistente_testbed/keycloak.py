"""A real Keycloak server on 127.0.0.1 with the project's realm, for `make up` and the tests.

The distribution comes from Maven Central through hack/keycloak.sh, which also runs its one-time
Quarkus build; it is cached by version outside the repository. Each server gets a small home of
its own (its own `conf/` and `data/`, links to the cached `lib/`, `themes/`, `providers/`) and
starts with `kc.sh start --optimized`, so several checkouts and test sessions can run servers
from one cache at the same time.

The realm is imported at start from testbed/keycloak/assistente-realm.json. That file holds no
secret: every demo clerk's password is a `${ASSISTENTE_DEMO_PASSWORD_...}` placeholder, which
Keycloak resolves from the environment during the import, and the server generates those
passwords (and the bootstrap admin's) each time it starts.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any, Self

from assistente_testbed.paths import repo_root
from assistente_testbed.process import (
    LocalServer,
    ManagedProcess,
    ServiceError,
    free_port,
    wait_until,
)
from assistente_testbed.tools import run_hack_script

REALM = "assistente"
CONSOLE_CLIENT_ID = "assistente-console"
# The audience the realm's console client puts in access tokens; the API checks it.
API_AUDIENCE = "assistente-api"
TEAM_ROLE_PREFIX = "equipe:"
SUPERVISOR_ROLE = "supervisor"
# The clerk `make up` hands to a person trying the console: on every team.
DEMO_CLERK = "atendente.demo"
ADMIN_USERNAME = "admin"

_PASSWORD_PLACEHOLDER = re.compile(r"^\$\{(ASSISTENTE_DEMO_PASSWORD_[A-Z0-9_]+)\}$")
_LOGIN_FORM_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', re.S)

# A 2-core machine shared with PostgreSQL, Redis, Rasa and the app: a small heap, the serial
# collector (no GC threads competing for the cores) and the C1 compiler only, which cuts start-up
# CPU by about a third at the price of peak throughput a test bed never needs.
JAVA_OPTS = (
    "-Xms64m -Xmx384m -XX:MaxMetaspaceSize=256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
    "-XX:+ExitOnOutOfMemoryError -Dfile.encoding=UTF-8 -Djava.security.egd=file:/dev/urandom"
)


def default_realm_file() -> Path:
    return repo_root() / "testbed" / "keycloak" / "assistente-realm.json"


def ensure_keycloak_dist(timeout: float = 1200.0) -> Path:
    """The cached, pre-built distribution (fetched and built on first use)."""
    return run_hack_script("keycloak.sh", timeout=timeout)


@dataclass(frozen=True)
class Clerk:
    """A demo clerk of the realm, with the password generated for this server's run."""

    username: str
    password: str
    name: str
    roles: tuple[str, ...]

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(
            r.removeprefix(TEAM_ROLE_PREFIX) for r in self.roles if r.startswith(TEAM_ROLE_PREFIX)
        )

    @property
    def is_supervisor(self) -> bool:
        return SUPERVISOR_ROLE in self.roles


def _realm_clerks(realm: Mapping[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(username, password placeholder variable, display name, roles) of each realm user."""
    clerks = []
    for user in realm.get("users", []):
        variables = [
            match.group(1)
            for credential in user.get("credentials", [])
            if (match := _PASSWORD_PLACEHOLDER.match(str(credential.get("value", ""))))
        ]
        if len(variables) != 1:
            raise ServiceError(
                f"realm user {user.get('username')!r} must have exactly one password credential "
                "whose value is a ${ASSISTENTE_DEMO_PASSWORD_...} placeholder (no password in git)"
            )
        name = f"{user.get('firstName', '')} {user.get('lastName', '')}".strip()
        clerks.append((user["username"], variables[0], name, tuple(user.get("realmRoles", []))))
    return clerks


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class KeycloakServer(LocalServer):
    """`kc.sh start --optimized` on 127.0.0.1 with the realm imported at start.

    `console_url` is the console's address (e.g. ``http://127.0.0.1:8000/atendimento``): the
    realm allows only redirects under it and token requests from its origin.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        console_url: str,
        port: int | None = None,
        realm_file: Path | None = None,
    ) -> None:
        super().__init__(
            base_dir or Path(tempfile.mkdtemp(prefix="assistente-keycloak-")),
            owns_base_dir=base_dir is None,
        )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.console_url = console_url.rstrip("/")
        self.realm_file = realm_file or default_realm_file()
        self.home = self.base_dir / "home"
        self.log_path = self.base_dir / "keycloak.log"
        self.admin_password = ""
        self.clerks: dict[str, Clerk] = {}

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def api_env(self) -> dict[str, str]:
        """The API's settings for this server, as the operator sets them from the custom
        resource: the issuer only (the JWKS is found through its discovery document)."""
        return {
            "ASSISTENTE_OIDC_ISSUER": self.issuer,
            "ASSISTENTE_OIDC_AUDIENCE": API_AUDIENCE,
            "ASSISTENTE_OIDC_CLIENT_ID": CONSOLE_CLIENT_ID,
        }

    # --- lifecycle ---------------------------------------------------------------------------
    def _prepare_home(self, dist: Path) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        (self.home / "bin").mkdir(parents=True)
        # kc.sh finds its home from its own resolved path, so it is copied, not linked.
        shutil.copy2(dist / "bin" / "kc.sh", self.home / "bin" / "kc.sh")
        shutil.copytree(dist / "conf", self.home / "conf")
        shutil.copy2(dist / "version.txt", self.home / "version.txt")
        # Read-only at run time with --optimized: shared with every other server of this version.
        for name in ("lib", "themes", "providers"):
            (self.home / name).symlink_to(dist / name, target_is_directory=True)
        imports = self.home / "data" / "import"
        imports.mkdir(parents=True)
        shutil.copy2(self.realm_file, imports / self.realm_file.name)

    def _generate_credentials(self) -> dict[str, str]:
        realm = json.loads(self.realm_file.read_text())
        if realm.get("realm") != REALM:
            raise ServiceError(f"{self.realm_file}: expected realm {REALM!r}")
        env: dict[str, str] = {}
        self.clerks = {}
        for username, variable, name, roles in _realm_clerks(realm):
            password = secrets.token_urlsafe(12)
            env[variable] = password
            self.clerks[username] = Clerk(username, password, name, roles)
        self.admin_password = secrets.token_urlsafe(18)
        credentials = self.base_dir / "credentials.json"
        credentials.touch(mode=0o600)
        credentials.chmod(0o600)
        credentials.write_text(
            json.dumps(
                {
                    "admin": {"username": ADMIN_USERNAME, "password": self.admin_password},
                    "clerks": {c.username: c.password for c in self.clerks.values()},
                },
                indent=2,
            )
            + "\n"
        )
        return env

    def launch(self) -> None:
        """Start the process without waiting (see `wait_ready`), so callers can overlap it with
        other slow starts (Rasa)."""
        dist = ensure_keycloak_dist()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_home(dist)
        env = dict(os.environ)
        env.update(self._generate_credentials())
        env.update(
            {
                "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
                "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
                "ASSISTENTE_CONSOLE_URL": self.console_url,
                "JAVA_OPTS": JAVA_OPTS,
            }
        )
        argv = [
            str(self.home / "bin" / "kc.sh"),
            "start",
            "--optimized",
            f"--http-host={self.host}",
            f"--http-port={self.port}",
            "--http-enabled=true",
            "--hostname-strict=false",
            # Runtime as well as build-time option: without it Keycloak opens JGroups ports.
            "--cache=local",
            "--import-realm",
        ]
        self.log_path.write_text("")
        self._process = ManagedProcess(
            "keycloak", argv, log_path=self.log_path, env=env, cwd=self.home
        )
        self._process.start()

    def wait_ready(self, timeout: float = 300.0) -> None:
        process = self._process
        if process is None:
            raise ServiceError("Keycloak was not launched")

        def ready() -> bool:
            process.check_alive()
            try:
                with urllib.request.urlopen(self.discovery_url, timeout=2) as response:  # noqa: S310
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        wait_until(
            ready,
            timeout=timeout,
            what=f"Keycloak on port {self.port} (realm {REALM!r})",
            interval=0.5,
            log_path=self.log_path,
        )

    def start(self, timeout: float = 300.0) -> Self:
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    # --- clerks ------------------------------------------------------------------------------
    def clerk(self, username: str) -> Clerk:
        try:
            return self.clerks[username]
        except KeyError:
            raise ServiceError(f"no demo clerk {username!r} in {self.realm_file.name}") from None

    def login(
        self, username: str, *, password: str | None = None, redirect_uri: str | None = None
    ) -> dict[str, Any]:
        """Sign a clerk in as the console does (authorization code + PKCE through the login
        form) and return the token response (access_token, refresh_token, id_token, ...).
        `password` overrides the clerk's generated one (to try a wrong password)."""
        clerk = self.clerk(username)
        redirect_uri = redirect_uri or f"{self.console_url}/"
        endpoint = f"{self.issuer}/protocol/openid-connect"
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        state = secrets.token_urlsafe(12)
        query = urllib.parse.urlencode(
            {
                "client_id": CONSOLE_CLIENT_ID,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": "openid",
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        opener = urllib.request.build_opener(_NoRedirect)
        status, headers, body = _fetch(opener, f"{endpoint}/auth?{query}")
        form = _LOGIN_FORM_ACTION.search(body)
        if status != 200 or form is None:
            raise ServiceError(f"Keycloak did not show its login form ({status}): {body[:300]}")
        # Keycloak marks its cookies Secure; browsers accept that on 127.0.0.1, urllib does not,
        # so they are carried by hand.
        cookies = "; ".join(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or [])
        status, headers, body = _fetch(
            opener,
            html.unescape(form.group(1)),
            data={
                "username": clerk.username,
                "password": clerk.password if password is None else password,
                "credentialId": "",
            },
            headers={"Cookie": cookies},
        )
        location = headers.get("Location", "")
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        if status != 302 or params.get("state") != [state] or "code" not in params:
            raise ServiceError(f"login of {username!r} failed ({status}): {body[:300]}")
        status, _, body = _fetch(
            opener,
            f"{endpoint}/token",
            data={
                "grant_type": "authorization_code",
                "client_id": CONSOLE_CLIENT_ID,
                "code": params["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )
        if status != 200:
            raise ServiceError(f"token exchange for {username!r} failed ({status}): {body[:300]}")
        tokens: dict[str, Any] = json.loads(body)
        return tokens

    def access_token(self, username: str) -> str:
        return str(self.login(username)["access_token"])

    # --- administration (tests: revoke sessions, inspect users) ---------------------------------
    def admin_request(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin REST API (`path` below /admin/realms/<realm>) as the bootstrap admin."""
        opener = urllib.request.build_opener(_NoRedirect)
        status, _, text = _fetch(
            opener,
            f"{self.url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": ADMIN_USERNAME,
                "password": self.admin_password,
            },
        )
        if status != 200:
            raise ServiceError(f"admin sign-in failed ({status}): {text[:300]}")
        token = json.loads(text)["access_token"]
        status, _, text = _fetch(
            opener,
            f"{self.url}/admin/realms/{REALM}{path}",
            method=method,
            json_body=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if status >= 400:
            raise ServiceError(f"admin {method} {path} failed ({status}): {text[:300]}")
        return json.loads(text) if text.strip() else None

    def end_sessions(self, username: str) -> None:
        """Sign a clerk out everywhere, as an administrator or an idle timeout would."""
        users = self.admin_request("GET", f"/users?exact=true&username={username}")
        if not users:
            raise ServiceError(f"no user {username!r} in realm {REALM!r}")
        self.admin_request("POST", f"/users/{users[0]['id']}/logout")


def _fetch(
    opener: urllib.request.OpenerDirector,
    url: str,
    *,
    method: str | None = None,
    data: Mapping[str, str] | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Message, str]:
    """One HTTP exchange without following redirects: (status, headers, body text)."""
    payload: bytes | None = None
    all_headers = dict(headers or {})
    if data is not None:
        payload = urllib.parse.urlencode(data).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        payload = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=payload, headers=all_headers, method=method)  # noqa: S310
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")
