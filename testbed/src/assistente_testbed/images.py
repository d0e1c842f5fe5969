"""Container images built on this machine without a Docker engine or a registry.

Bases come from Debian packages (mmdebstrap) and the package registries (PyPI wheels through pip),
the project's images from its own Dockerfiles with buildah, passing the local bases as the
Dockerfiles' `*_BASE` build arguments (the published build keeps the upstream bases).

Each image is cached as an archive under `~/.cache/assistente-digital/images/`, named after a
hash of everything it is made of: its recipe or Dockerfile (and target), the files it copies in,
and the digests of its bases. A warm run finds every archive and builds nothing. Several
checkouts share the cache; a lock per image makes one build while the others wait. Building a
new archive deletes the older ones of that image beyond the few used last, so a day of edits
does not fill the disk (an api or worker archive is ~350 MiB, a rasa one ~3 GiB).

The archives are loaded straight into the real node's containerd (`RealNode.load_images`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from assistente_testbed import progress
from assistente_testbed.paths import cache_root, read_versions, repo_root
from assistente_testbed.process import ServiceError
from assistente_testbed.tools import cached_bin_dir

REPOSITORY = "localhost/assistente-digital"
DEBIAN_SUITE = "bookworm"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VENV_PATH = f"/opt/venv/bin:{SYSTEM_PATH}"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
KEEP_ARCHIVES_PER_IMAGE = 3
"""Archives kept per image: the ones used last (other checkouts may be on other revisions)."""


def images_dir() -> Path:
    path = cache_root() / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log(message: str) -> None:
    # Builds also run in the background of a test session: progress.report reaches the terminal.
    progress.report("images", message)


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class BuiltImage:
    """An image in the cache: `ref` is the name it carries inside its archive."""

    name: str
    ref: str
    archive: Path

    @property
    def digest(self) -> str:
        """The image's config digest (its ID), read from the archive."""
        with tarfile.open(self.archive) as tar:
            member = tar.extractfile("manifest.json")
            assert member is not None
            manifest = json.loads(member.read())
        return str(manifest[0]["Config"]).removesuffix(".json").rsplit("/", 1)[-1]


# --- recipes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebianRootfs:
    """A Debian root filesystem (mmdebstrap, minbase) with `packages`, as a one-layer image."""

    name: str
    packages: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    """For an image whose pods give only `args` (a sidecar named after an upstream image)."""

    def bases(self) -> tuple[str, ...]:
        return ()

    def inputs(self, bases: Mapping[str, BuiltImage]) -> list[bytes]:
        sources = DEBIAN_SOURCES.read_bytes() if DEBIAN_SOURCES.exists() else b""
        recipe = [DEBIAN_SUITE, "minbase", *self.packages, json.dumps(dict(self.env)), *self.cmd]
        if self.entrypoint:
            # Only when set, so the images without one keep their cache keys.
            recipe.append(json.dumps(["entrypoint", *self.entrypoint]))
        return [json.dumps(recipe).encode(), sources]

    def build(self, buildah: Buildah, ref: str, bases: Mapping[str, BuiltImage]) -> None:
        with tempfile.TemporaryDirectory(prefix="assistente-rootfs-", dir=images_dir()) as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            mirrors = [str(DEBIAN_SOURCES)] if DEBIAN_SOURCES.exists() else []
            _run(
                [
                    "mmdebstrap", "--quiet", "--variant=minbase", "--format=tar",
                    f"--include={','.join(self.packages)}",
                    # No documentation or package lists in an image.
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    "--dpkgopt=path-exclude=/usr/share/info/*",
                    DEBIAN_SUITE, str(rootfs), *mirrors,
                ],
                what=f"mmdebstrap {self.name}",
            )  # fmt: skip
            container = buildah.run("from", "scratch").strip()
            try:
                buildah.run("add", container, str(rootfs), "/")
                config = [f"--env={k}={v}" for k, v in {"PATH": SYSTEM_PATH, **self.env}.items()]
                if self.entrypoint:
                    config.append(f"--entrypoint={json.dumps(list(self.entrypoint))}")
                if self.cmd:
                    config.append(f"--cmd={json.dumps(list(self.cmd))}")
                buildah.run("config", *config, container)
                buildah.run("commit", "--format=docker", container, ref)
            finally:
                buildah.run("rm", container, check=False)


@dataclass(frozen=True)
class ScratchImage:
    """Files from this machine (a static binary) in an image FROM scratch."""

    name: str
    files: Mapping[str, Path]  # path in the image -> file here
    entrypoint: tuple[str, ...]
    user: str = "65532:65532"

    def bases(self) -> tuple[str, ...]:
        return ()

    def inputs(self, bases: Mapping[str, BuiltImage]) -> list[bytes]:
        parts = [json.dumps([sorted(self.files), self.entrypoint, self.user]).encode()]
        return parts + [self.files[path].read_bytes() for path in sorted(self.files)]

    def build(self, buildah: Buildah, ref: str, bases: Mapping[str, BuiltImage]) -> None:
        container = buildah.run("from", "scratch").strip()
        try:
            for target, source in self.files.items():
                buildah.run("copy", "--chmod=0755", container, str(source), target)
            buildah.run(
                "config",
                f"--entrypoint={json.dumps(list(self.entrypoint))}",
                f"--user={self.user}",
                container,
            )
            buildah.run("commit", "--format=docker", container, ref)
        finally:
            buildah.run("rm", container, check=False)


@dataclass(frozen=True)
class PythonEnvImage:
    """A base with a virtualenv in /opt/venv installed by pip from PyPI: the local stand-in for
    an upstream Python image (Rasa's, rasa-sdk's). The host's pip cache is mounted in, so
    wheels the Rasa venv already downloaded are not fetched again."""

    name: str
    base: str
    install: tuple[str, ...]  # one pip command line per entry, run in order
    files: Mapping[str, Path]  # copied to /build-inputs/ for the pip commands
    user: str = "1001"
    workdir: str = "/app"
    entrypoint: tuple[str, ...] = ()

    def bases(self) -> tuple[str, ...]:
        return (self.base,)

    def inputs(self, bases: Mapping[str, BuiltImage]) -> list[bytes]:
        recipe = [self.install, sorted(self.files), self.user, self.workdir, self.entrypoint]
        parts = [json.dumps(recipe).encode(), bases[self.base].digest.encode()]
        return parts + [self.files[name].read_bytes() for name in sorted(self.files)]

    def build(self, buildah: Buildah, ref: str, bases: Mapping[str, BuiltImage]) -> None:
        container = buildah.run("from", "--pull=never", bases[self.base].ref).strip()
        pip_cache = Path.home() / ".cache" / "pip"
        pip_cache.mkdir(parents=True, exist_ok=True)
        try:
            for target, source in self.files.items():
                buildah.run("copy", container, str(source), f"/build-inputs/{target}")
            script = " && ".join(
                [
                    "python -m venv /opt/venv",
                    *(f"/opt/venv/bin/pip {line}" for line in self.install),
                ]
            )
            buildah.run(
                "run", "--network=host", "--isolation=chroot", *_trust_mounts(),
                f"--volume={pip_cache}:/root/.cache/pip", container, "--",
                "sh", "-c", f"{script} && rm -rf /build-inputs && mkdir -p {self.workdir}"
                f" && chmod 0777 {self.workdir}",
            )  # fmt: skip
            config = [
                f"--env=PATH={VENV_PATH}",
                f"--workingdir={self.workdir}",
                f"--user={self.user}",
            ]
            if self.entrypoint:
                config.append(f"--entrypoint={json.dumps(list(self.entrypoint))}")
            buildah.run("config", *config, container)
            buildah.run("commit", "--format=docker", container, ref)
        finally:
            buildah.run("rm", container, check=False)


@dataclass(frozen=True)
class AptImage:
    """A base with more Debian packages (apt-get from Debian's archive), e.g. a compiler for a
    build stage."""

    name: str
    base: str
    packages: tuple[str, ...]

    def bases(self) -> tuple[str, ...]:
        return (self.base,)

    def inputs(self, bases: Mapping[str, BuiltImage]) -> list[bytes]:
        return [json.dumps(self.packages).encode(), bases[self.base].digest.encode()]

    def build(self, buildah: Buildah, ref: str, bases: Mapping[str, BuiltImage]) -> None:
        container = buildah.run("from", "--pull=never", bases[self.base].ref).strip()
        try:
            install = (
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                f"--no-install-recommends {' '.join(self.packages)} >/dev/null"
                " && rm -rf /var/lib/apt/lists/*"
            )
            buildah.run(
                "run", "--network=host", "--isolation=chroot", "--user=0:0", *_trust_mounts(),
                container, "--", "sh", "-c", install,
            )  # fmt: skip
            buildah.run("commit", "--format=docker", container, ref)
        finally:
            buildah.run("rm", container, check=False)


@dataclass(frozen=True)
class DockerfileImage:
    """One of the project's own images, from its Dockerfile, with local bases as build args."""

    name: str
    dockerfile: Path
    context: Path
    target: str | None
    base_args: Mapping[str, str]  # Dockerfile ARG -> recipe name of the local base

    def bases(self) -> tuple[str, ...]:
        return tuple(self.base_args.values())

    def inputs(self, bases: Mapping[str, BuiltImage]) -> list[bytes]:
        args = {arg: bases[base].digest for arg, base in sorted(self.base_args.items())}
        parts = [json.dumps([self.target, args]).encode(), self.dockerfile.read_bytes()]
        ignore = self.context / ".dockerignore"
        if ignore.exists():
            parts.append(ignore.read_bytes())
        for path in context_files(self.dockerfile, self.context):
            parts += [str(path.relative_to(self.context)).encode(), path.read_bytes()]
        return parts

    def build(self, buildah: Buildah, ref: str, bases: Mapping[str, BuiltImage]) -> None:
        args = [f"--build-arg={arg}={bases[base].ref}" for arg, base in self.base_args.items()]
        if self.target:
            args.append(f"--target={self.target}")
        buildah.run(
            "build", "--quiet", "--layers", "--format=docker", "--pull=never", "--network=host",
            "--isolation=chroot", *_trust_mounts(), *args, f"--file={self.dockerfile}",
            f"--tag={ref}", str(self.context),
            timeout=3600,
        )  # fmt: skip


Recipe = DebianRootfs | ScratchImage | PythonEnvImage | AptImage | DockerfileImage


def _trust_mounts() -> list[str]:
    """Build steps trust what this machine trusts (it may reach PyPI through a TLS proxy with a
    CA of its own): the host's CA bundle, and pip/uv told to use it. Mounted only while a step
    runs; nothing of it stays in an image."""
    if not HOST_CA_BUNDLE.exists():
        return []
    config = images_dir() / "build-trust"
    config.mkdir(exist_ok=True)
    pip_conf = config / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {HOST_CA_BUNDLE}\n")
    uv_toml = config / "uv.toml"
    uv_toml.write_text("native-tls = true\n")
    return [
        f"--volume={HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
        f"--volume={pip_conf}:/etc/pip.conf:ro",
        f"--volume={uv_toml}:/etc/uv/uv.toml:ro",
    ]


def context_files(dockerfile: Path, context: Path) -> list[Path]:
    """The files a Dockerfile copies from its context (every COPY/ADD without --from), as git
    sees them (tracked or new, not ignored): what the image's content hash must cover."""
    sources: set[str] = set()
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.update(w for w in words[1:-1] if not w.startswith("--"))
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *sources],
        cwd=context,
        capture_output=True,
        check=True,
    ).stdout
    files = {context / name for name in listed.decode().split("\0") if name}
    return sorted(path for path in files if path.is_file())


# --- buildah ------------------------------------------------------------------------------------


class Buildah:
    """buildah with a private, throw-away storage (nothing shared with other checkouts but the
    archives in the cache)."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "storage"
        self.runroot = workdir / "run"

    def run(self, *args: str, check: bool = True, timeout: float = 1800) -> str:
        argv = [
            "buildah", f"--root={self.root}", f"--runroot={self.runroot}",
            "--storage-driver=overlay", *args,
        ]  # fmt: skip
        return _run(argv, what=f"buildah {args[0]}", check=check, timeout=timeout)

    def load(self, image: BuiltImage) -> None:
        self.run("pull", "--quiet", f"docker-archive:{image.archive}")

    def save(self, ref: str, archive: Path) -> None:
        self.run("push", "--quiet", ref, f"docker-archive:{archive}:{ref}")

    def remove(self) -> None:
        self.run("rm", "--all", check=False)
        self.run("rmi", "--all", "--force", check=False)
        # containers/storage bind-mounts its overlay directory onto itself; unmount whatever is
        # left under the storage, deepest first, before deleting it.
        prefix = str(self.root.parent) + "/"
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)
        ]
        for mountpoint in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)
        shutil.rmtree(self.root.parent, ignore_errors=True)


class _Builds:
    """The build commands running now, so a cancelled build stops at once."""

    lock = threading.Lock()
    running: ClassVar[set[subprocess.Popen[str]]] = set()
    cancelled = threading.Event()


def _run(argv: Sequence[str], *, what: str, check: bool = True, timeout: float = 1800) -> str:
    if _Builds.cancelled.is_set():
        raise ServiceError(f"{what}: cancelled")
    process = subprocess.Popen(
        ["nice", "-n", "10", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    with _Builds.lock:
        _Builds.running.add(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with _Builds.lock:
            _Builds.running.discard(process)
        if process.poll() is None:
            process.kill()
            process.wait()
    if check and process.returncode != 0:
        tail = "\n".join((stdout + stderr).strip().splitlines()[-40:])
        raise ServiceError(f"{what} failed ({process.returncode}):\n{tail}")
    return stdout


def cancel_builds() -> None:
    """Stops the running build step; the build then cleans up its storage and gives up."""
    _Builds.cancelled.set()
    with _Builds.lock:
        for process in _Builds.running:
            process.terminate()


# --- the catalogue ------------------------------------------------------------------------------


def recipes() -> dict[str, Recipe]:
    """Every image the test bed can build, by name."""
    root = repo_root()
    versions = read_versions()
    lock = root / "rasa" / "requirements.lock"
    uv_dir = cache_root() / f"uv-{versions['UV_VERSION']}" / "bin"
    pinned_rasa = f"rasa=={versions['RASA_VERSION']} rasa-sdk=={versions['RASA_SDK_VERSION']}"
    catalogue: list[Recipe] = [
        # --- infrastructure of the node
        ScratchImage("pause", {"/pause": pause_binary()}, ("/pause",)),
        ScratchImage("coredns", {"/coredns": cached_bin_dir("coredns") / "coredns"}, ("/coredns",)),
        DebianRootfs(
            "redis",
            ("redis-server", "redis-tools"),
            env={"LANG": "C.UTF-8"},
            cmd=("redis-server",),
        ),
        # The local stand-in for the upstream redis_exporter image of the Redis pods' sidecar:
        # the same exporter (Debian packages its release), the same flags and variables, with
        # the binary as the entry point as upstream has it.
        DebianRootfs(
            "redis-exporter",
            ("prometheus-redis-exporter",),
            entrypoint=("/usr/bin/prometheus-redis-exporter",),
        ),
        # --- local stand-ins for the upstream bases of the Dockerfiles
        DebianRootfs(
            "python-base",
            ("python3", "python3-venv", "python-is-python3", "ca-certificates"),
            env={"LANG": "C.UTF-8"},
            cmd=("python3",),
        ),
        ScratchImage("uv", {"/uv": uv_dir / "uv", "/uvx": uv_dir / "uvx"}, ("/uv",)),
        PythonEnvImage(
            "rasa-base",
            "python-base",
            (
                "install --quiet --no-input -r /build-inputs/requirements.lock",
                # rasa 3.6 declares Python <3.11; hack/rasa-setup.sh installs it the same way.
                f"install --quiet --no-input --no-deps --ignore-requires-python {pinned_rasa}",
            ),
            {"requirements.lock": lock},
            entrypoint=("rasa",),
        ),
        PythonEnvImage(
            "rasa-sdk-base",
            "python-base",
            (
                "install --quiet --no-input --ignore-requires-python "
                f"rasa-sdk=={versions['RASA_SDK_VERSION']} -c /build-inputs/requirements.lock",
            ),
            {"requirements.lock": lock},
        ),
        AptImage("rasa-sdk-build-base", "rasa-sdk-base", ("gcc", "libc6-dev", "python3-dev")),
        # --- the project's images
        DockerfileImage(
            "api", root / "app" / "Dockerfile", root, "api", {"PYTHON_BASE": "python-base"}
        ),
        DockerfileImage(
            "worker", root / "app" / "Dockerfile", root, "worker", {"PYTHON_BASE": "python-base"}
        ),
        DockerfileImage(
            "operator",
            root / "operator" / "Dockerfile",
            root,
            None,
            {"PYTHON_BASE": "python-base", "UV_IMAGE": "uv"},
        ),
        DockerfileImage(
            "rasa", root / "rasa" / "Dockerfile", root / "rasa", None, {"RASA_BASE": "rasa-base"}
        ),
        DockerfileImage(
            "actions",
            root / "rasa" / "actions.Dockerfile",
            root,
            None,
            {"RASA_SDK_BASE": "rasa-sdk-base", "RASA_SDK_BUILD_BASE": "rasa-sdk-build-base"},
        ),
    ]
    return {recipe.name: recipe for recipe in catalogue}


NODE_IMAGES = ("pause", "coredns")
APP_IMAGES = ("api", "worker", "rasa", "actions", "operator", "redis", "redis-exporter")


def pause_binary() -> Path:
    """The sandbox process (testbed/images/pause.c), compiled statically once per source hash."""
    source = repo_root() / "testbed" / "images" / "pause.c"
    binary = images_dir() / f"pause-{_sha256(source.read_bytes())[:12]}"
    if not binary.exists():
        tmp = binary.with_suffix(".tmp")
        _run(["gcc", "-Os", "-static", "-s", "-o", str(tmp), str(source)], what="gcc pause.c")
        tmp.rename(binary)
    return binary


def _last_used(archive: Path) -> float:
    try:
        return archive.stat().st_mtime
    except OSError:  # removed meanwhile by another checkout's prune
        return 0.0


def prune_archives(name: str, *, keep: int = KEEP_ARCHIVES_PER_IMAGE) -> list[str]:
    """Deletes all but the `keep` most recently used archives of image `name` (their mtime is
    their last use), skipping any being built or checked under its lock right now; returns the
    file names removed. Lock files stay: deleting one another process has open would let two
    processes hold "the" lock at once."""
    own_archive = re.compile(rf"{re.escape(name)}-[0-9a-f]{{16}}\.tar")
    archives = sorted(
        (path for path in images_dir().iterdir() if own_archive.fullmatch(path.name)),
        key=_last_used,
        reverse=True,
    )
    removed: list[str] = []
    for archive in archives[keep:]:
        with archive.with_suffix(".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            archive.unlink(missing_ok=True)
            removed.append(archive.name)
    if removed:
        _log(f"{name}: older archives removed (the {keep} used last stay): {removed}")
    return removed


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ImageCache:
    """Builds what is missing, in dependency order, and says what it did."""

    def __init__(self) -> None:
        self.recipes = recipes()
        self._resolved: dict[str, BuiltImage] = {}
        self._buildah: Buildah | None = None
        self.built: list[tuple[str, float]] = []

    def ensure(self, names: Sequence[str]) -> dict[str, BuiltImage]:
        try:
            return {name: self._ensure(name) for name in names}
        finally:
            if self._buildah is not None:
                self._buildah.remove()
                self._buildah = None

    def _ensure(self, name: str) -> BuiltImage:
        if name in self._resolved:
            return self._resolved[name]
        recipe = self.recipes[name]
        bases = {base: self._ensure(base) for base in recipe.bases()}
        key = _sha256(*recipe.inputs(bases))[:16]
        ref = f"{REPOSITORY}/{name}:{key}"
        image = BuiltImage(name, ref, images_dir() / f"{name}-{key}.tar")
        with _locked(images_dir() / f"{name}-{key}.lock"):
            built = not image.archive.exists()
            if built:
                self._build(recipe, image, bases)
            else:
                _log(f"{name}: cached ({image.archive.name})")
                os.utime(image.archive)  # its last use, for prune_archives
        if built:
            prune_archives(name)
        self._resolved[name] = image
        return image

    def _build(self, recipe: Recipe, image: BuiltImage, bases: Mapping[str, BuiltImage]) -> None:
        _log(f"{image.name}: building {image.ref} (first time, or its inputs changed)")
        started = time.monotonic()
        if self._buildah is None:
            self._buildah = Buildah(Path(tempfile.mkdtemp(prefix="buildah-", dir=images_dir())))
        buildah = self._buildah
        for base in bases.values():
            if not buildah.run("images", "--quiet", base.ref, check=False).strip():
                buildah.load(base)
        recipe.build(buildah, image.ref, bases)
        partial = image.archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        buildah.save(image.ref, partial)
        partial.rename(image.archive)
        elapsed = time.monotonic() - started
        self.built.append((image.name, elapsed))
        size = image.archive.stat().st_size / 2**20
        _log(f"{image.name}: built in {elapsed:.0f}s ({size:.0f} MiB)")


class BackgroundBuild:
    """`ensure_images` in a thread, started early so the builds overlap other work (the test
    session starts it once it knows a real-node test will run)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._result: dict[str, BuiltImage] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="image-build", daemon=True)

    def start(self) -> BackgroundBuild:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._result = ensure_images(self.names)
        except BaseException as error:  # re-raised in result()
            self._error = error

    def cancel(self) -> None:
        """Stops a build still running (end of a test session that did not need it)."""
        if self._thread.is_alive():
            cancel_builds()
            self._thread.join()

    def result(self) -> dict[str, BuiltImage]:
        self._thread.join()
        if self._error is not None:
            raise ServiceError(f"building the images failed: {self._error}") from self._error
        assert self._result is not None
        return self._result


def ensure_images(names: Sequence[str]) -> dict[str, BuiltImage]:
    """The named images (and their bases), built if missing; progress goes to stderr."""
    return ImageCache().ensure(names)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m assistente_testbed.images [NAME...]`: build (or find) images, print refs."""
    names = list(argv if argv is not None else sys.argv[1:]) or [*NODE_IMAGES, *APP_IMAGES]
    for name, image in ensure_images(names).items():
        print(f"{name}\t{image.ref}\t{image.archive}")


if __name__ == "__main__":
    main()
