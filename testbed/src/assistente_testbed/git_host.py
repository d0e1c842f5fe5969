"""A local stand-in for GitHub's git service, so Argo CD syncs the manifests exactly as committed.

The GitOps layout names its sources by their real addresses (this repository and the pinned
third-party projects on https://github.com/...). Argo CD cannot rewrite those addresses, and the
test bed may not reach the internet, so `GitHost` plays the part of github.com on 127.0.0.1:

- an HTTP proxy that accepts `CONNECT github.com:443` and nothing else (every other host is
  refused, so no request can leave the machine);
- behind it, TLS with a certificate for github.com issued by a throw-away CA that only the
  processes of this test bed trust (Argo CD reads it from its TLS data path, git from
  GIT_SSL_CAINFO);
- and git's own smart-HTTP server, `git http-backend`, over bare repositories: this checkout's
  committed HEAD published as `main`, and the third-party projects rebuilt from the Go module
  cache at their pinned tags (the module proxy serves a project's tree at a tag; nothing is
  downloaded from GitHub).

Clients use it through the standard proxy variables (HTTPS_PROXY) and a CA file: the same knobs
an air-gapped court uses for its own git mirror.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import os
import shutil
import socketserver
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Self

from assistente_testbed.gomodules import go_module_dir
from assistente_testbed.paths import cache_root
from assistente_testbed.process import ServiceError, free_port

GITHUB = "github.com"
# A fixed identity and date make every rebuilt mirror commit byte-identical (same SHA).
_MIRROR_ENV = {
    "GIT_AUTHOR_NAME": "assistente-testbed",
    "GIT_AUTHOR_EMAIL": "testbed@assistente.invalid",
    "GIT_COMMITTER_NAME": "assistente-testbed",
    "GIT_COMMITTER_EMAIL": "testbed@assistente.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}


def _git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def module_mirror(module: str, version: str) -> Path:
    """A bare git repository whose tag `version` (and branch main) holds the module's tree.

    Built once per version under the shared cache, guarded by a lock so parallel checkouts
    wait for each other instead of writing the same repository twice.
    """
    name = module.replace("/", "_") + f"@{version}.git"
    target = cache_root() / "git-mirrors" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "refs" / "tags" / version).exists():
            return target
        source = go_module_dir(module, version)
        staging = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=target.parent))
        try:
            _git("init", "--quiet", "--bare", str(staging))
            env = dict(
                _MIRROR_ENV,
                GIT_DIR=str(staging),
                GIT_WORK_TREE=str(source),
                GIT_INDEX_FILE=str(staging / "mirror.index"),
            )
            _git("add", "--all", "--force", ".", cwd=source, env=env)
            _git(
                "commit", "--quiet", "--no-verify", "-m", f"{module} {version}", cwd=source, env=env
            )
            _git("tag", version, cwd=source, env=env)
            (staging / "mirror.index").unlink()
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


class _Certificates:
    """A CA valid for two days and a github.com server certificate it signed (openssl CLI)."""

    def __init__(self, directory: Path, host: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = directory / "ca.pem"
        self.cert = directory / f"{host}.pem"
        self.key = directory / f"{host}.key"
        ca_key, csr = directory / "ca.key", directory / f"{host}.csr"
        extensions = directory / "server.ext"
        extensions.write_text(
            f"subjectAltName=DNS:{host}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        for argv in (
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(ca_key), "-out", str(self.ca), "-days", "2",
             "-subj", "/CN=assistente-testbed git host CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign"],
            ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(self.key), "-out", str(csr), "-subj", f"/CN={host}"],
            ["x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(self.cert), "-days", "2",
             "-extfile", str(extensions)],
        ):  # fmt: skip
            result = subprocess.run(["openssl", *argv], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ServiceError(f"openssl {argv[0]} failed: {result.stderr.strip()}")
        for secret in (ca_key, self.key):
            secret.chmod(0o600)


class _GitBackendHandler(http.server.BaseHTTPRequestHandler):
    """git's smart HTTP protocol, answered by `git http-backend` (CGI) over the repositories."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        self.server.log(f"git {self.command} {self.path}: " + format % args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        owner_repo = "/".join(path.strip("/").split("/")[:2])
        repo = owner_repo if owner_repo.endswith(".git") else f"{owner_repo}.git"
        if repo not in self.server.repositories:
            self.send_error(404, f"repository {owner_repo} is not served by the test bed")
            return
        rest = path.strip("/").split("/", 2)[2] if path.strip("/").count("/") >= 2 else ""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{repo}/{rest}",
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        body = self._body() if self.command == "POST" else b""
        env["CONTENT_LENGTH"] = str(len(body))
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            self.send_error(500, result.stderr.decode(errors="replace")[:200])
            return
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve  # noqa: N815 - http.server dispatches on these names
    do_POST = _serve  # noqa: N815


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Accepts CONNECT to the served host only; then speaks TLS and git on that tunnel."""

    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        self.server.log("proxy: " + format % args)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if host != self.server.host or port != "443":
            self.send_error(403, f"the test bed reaches no host but {self.server.host}:443")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        try:
            tls = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.server.log(f"proxy: TLS handshake failed: {error}")
            return
        with contextlib.closing(tls):
            _GitBackendHandler(tls, self.client_address, self.server)

    def _refuse(self) -> None:
        self.send_error(405, "only CONNECT to the served git host is allowed")

    do_GET = _refuse  # noqa: N815
    do_POST = _refuse  # noqa: N815
    do_HEAD = _refuse  # noqa: N815


class _ProxyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, port: int, *, root: Path, host: str, tls: ssl.SSLContext, log: Path):
        self.root = root
        self.host = host
        self.tls = tls
        self.repositories: set[str] = set()
        self._log_path = log
        self._log_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _ProxyHandler)

    def log(self, line: str) -> None:
        with self._log_lock, self._log_path.open("a") as log:
            log.write(line.rstrip() + "\n")


class GitHost:
    """github.com for the processes that use `proxy_url` and trust `ca_file` (see module doc)."""

    def __init__(self, base_dir: Path | None = None, *, host: str = GITHUB) -> None:
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="assistente-git-"))
        self._owns_base_dir = base_dir is None
        self.host = host
        self.root = self.base_dir / "repositories"
        self.log_path = self.base_dir / "git-host.log"
        self.port = free_port()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._certificates: _Certificates | None = None

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        if self._certificates is None:
            raise ServiceError("the git host is not started")
        return self._certificates.ca

    def url(self, slug: str) -> str:
        """https://github.com/<owner>/<name>.git"""
        return f"https://{self.host}/{slug}.git"

    def start(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        self._certificates = _Certificates(self.base_dir / "tls", self.host)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(self._certificates.cert, self._certificates.key)
        self._server = _ProxyServer(
            self.port, root=self.root, host=self.host, tls=tls, log=self.log_path
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="git-host", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def remove(self) -> None:
        self.stop()
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- repositories ---------------------------------------------------------------------
    def _register(self, slug: str) -> Path:
        if self._server is None:
            raise ServiceError("start the git host before adding repositories")
        self._server.repositories.add(f"{slug}.git")
        path = self.root / f"{slug}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def publish_checkout(self, slug: str, checkout: Path, *, branch: str = "main") -> str:
        """Serve the committed HEAD of `checkout` as `branch` of `slug`; returns the commit.

        Only what is committed is served: uncommitted changes in the working tree are not.
        """
        path = self._register(slug)
        if not path.exists():
            _git("init", "--quiet", "--bare", str(path))
        _git("push", "--quiet", "--force", str(path), f"HEAD:refs/heads/{branch}", cwd=checkout)
        return _git("rev-parse", "HEAD", cwd=checkout)

    def publish_module(self, slug: str, module: str, version: str) -> None:
        """Serve `module@version` from the Go module cache as the tag `version` of `slug`."""
        path = self._register(slug)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(module_mirror(module, version), target_is_directory=True)

    @contextlib.contextmanager
    def clone(self, slug: str, *, branch: str = "main") -> Iterator[Path]:
        """A scratch clone of a served repository; commit in it and `push()` to publish."""
        work = Path(tempfile.mkdtemp(prefix="assistente-git-clone-"))
        try:
            _git("clone", "--quiet", "--branch", branch, str(self.root / f"{slug}.git"), str(work))
            _git("config", "user.name", "assistente-testbed", cwd=work)
            _git("config", "user.email", "testbed@assistente.invalid", cwd=work)
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def commit(self, checkout: Path, message: str, *, branch: str = "main") -> str:
        """Commit everything in a `clone()` and push it; returns the new commit."""
        _git("add", "--all", cwd=checkout)
        _git("commit", "--quiet", "--no-verify", "-m", message, cwd=checkout)
        _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=checkout)
        return _git("rev-parse", "HEAD", cwd=checkout)

    def head(self, slug: str, branch: str = "main") -> str:
        return _git("--git-dir", str(self.root / f"{slug}.git"), "rev-parse", branch)


def https_client_env(git_host: GitHost) -> dict[str, str]:
    """Environment for a git client that should reach `git_host` as github.com."""
    return {
        "HTTPS_PROXY": git_host.proxy_url,
        "https_proxy": git_host.proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "GIT_SSL_CAINFO": str(git_host.ca_file),
    }
