"""containerd image stores made once per set of images and shared by every real node on this
machine through hard links.

Loading the project's images into a new node's containerd (`ctr images import`) writes every
layer twice, once as a blob and once unpacked as an overlay snapshot: about 8 GB and 4 to 5 minutes
for the Rasa image (TensorFlow) and the others on the 2-core machine, for every cluster a test
session or `make cluster` starts. Both halves are immutable once written (blobs are named by
digest; a committed snapshot is only ever an overlay's read-only lower directory), so a node can
start from hard links to a store made once:

- A store is containerd's whole `root` directory after importing one set of images, under
  `~/.cache/assistente-digital/containerd-stores/<key>/`, where the key hashes the images'
  references (each carries its content hash), containerd's version and the snapshotter. It is
  made by a throw-away containerd (CRI off, in a private mount namespace) and never run again.
- A node copies it with `cp --link` (seconds), except containerd's two bolt databases, which
  it writes and therefore gets copies of its own. Whatever the node adds or deletes afterwards
  (containers, their writable layers, images) touches only its own directory entries.
- A store for a new set starts as hard links to the existing store that shares the most
  images, so a changed API image costs one import, not all of them: layers already present
  are recognised by digest and neither rewritten nor unpacked again.

Stores unused for `KEEP_UNUSED_DAYS` are deleted when a new one is made. Locks: a store is
built under an exclusive flock and read (copied) under a shared one, so two checkouts never
build the same store twice and a store is never deleted while a node copies it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistente_testbed import progress
from assistente_testbed.images import BuiltImage
from assistente_testbed.paths import cache_root
from assistente_testbed.process import ManagedProcess, ServiceError, wait_until

SNAPSHOTTER = "overlayfs"
NAMESPACE = "k8s.io"  # the CRI plugin's namespace: where the kubelet looks for images
KEEP_UNUSED_DAYS = 3
# Files containerd keeps writing in place: never shared between nodes.
PRIVATE_FILES = ("meta.db", "metadata.db")
# The identity of one containerd: a node that finds none makes its own.
INSTANCE_UUID = Path("io.containerd.grpc.v1.introspection") / "uuid"


def stores_dir() -> Path:
    path = cache_root() / "containerd-stores"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log(message: str) -> None:
    progress.report("images", message)


@functools.cache
def containerd_version() -> str:
    result = subprocess.run(
        ["containerd", "--version"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ServiceError("containerd not found: run `make setup` (apt-get install containerd)")
    return result.stdout.strip()


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def link_tree(source: Path, target: Path) -> None:
    """`target` as hard links to `source`'s files (a full copy across file systems), with
    copies of its own of the files containerd writes in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    linked = subprocess.run(
        ["cp", "-a", "--link", str(source), str(target)], capture_output=True, text=True
    )
    if linked.returncode != 0:
        # Another file system (a cache on another disk): hard links are impossible there.
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    for name in PRIVATE_FILES:
        for path in target.rglob(name):
            own = path.with_name(f"{name}.own")
            shutil.copy2(source / path.relative_to(target), own)
            own.replace(path)
    (target / INSTANCE_UUID).unlink(missing_ok=True)


@dataclass(frozen=True)
class ImageStore:
    """The store of one set of images (see the module's docstring)."""

    images: tuple[BuiltImage, ...]

    @classmethod
    def of(cls, images: Sequence[BuiltImage]) -> ImageStore:
        unique = {image.ref: image for image in images}
        return cls(tuple(unique[ref] for ref in sorted(unique)))

    @property
    def refs(self) -> list[str]:
        return [image.ref for image in self.images]

    @property
    def key(self) -> str:
        parts = [containerd_version(), SNAPSHOTTER, NAMESPACE, *self.refs]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def path(self) -> Path:
        return stores_dir() / self.key

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def lock(self) -> Path:
        return stores_dir() / f"{self.key}.lock"

    def copy_to(self, target: Path) -> None:
        """containerd's root directory with every image of the set, at `target` (new)."""
        if target.exists():
            raise ServiceError(f"{target} exists: a node's runtime starts from an empty root")
        started = time.monotonic()
        while True:
            with _flock(self.lock, fcntl.LOCK_SH):
                if (self.path / ".complete").exists():
                    link_tree(self.root, target)
                    (self.path / "last-used").touch()
                    break
            with _flock(self.lock, fcntl.LOCK_EX):
                if not (self.path / ".complete").exists():
                    self._build()
        _log(
            f"containerd store {self.key} ({len(self.images)} images) linked into the node in "
            f"{time.monotonic() - started:.1f}s"
        )

    # -- building -----------------------------------------------------------------------------
    def _nearest(self) -> Path | None:
        """The complete store sharing the most images with this one (newest on a tie)."""
        wanted = set(self.refs)
        best: tuple[int, float, Path] | None = None
        for candidate in stores_dir().iterdir():
            listing = candidate / "images.json"
            if not (candidate / ".complete").exists() or candidate == self.path:
                continue
            with contextlib.suppress(OSError, ValueError):
                shared = len(wanted & set(json.loads(listing.read_text())))
                ranked = (shared, (candidate / ".complete").stat().st_mtime, candidate)
                if shared and (best is None or ranked[:2] > best[:2]):
                    best = ranked
        return best[2] if best is not None else None

    def _build(self) -> None:
        started = time.monotonic()
        partial = stores_dir() / f"{self.key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        present: set[str] = set()
        base = self._nearest()
        if base is not None:
            with _flock(stores_dir() / f"{base.name}.lock", fcntl.LOCK_SH):
                if (base / ".complete").exists():
                    link_tree(base / "root", partial / "root")
                    present = set(json.loads((base / "images.json").read_text()))
        missing = [image for image in self.images if image.ref not in present]
        extra = sorted(present - set(self.refs))
        _log(
            f"containerd store {self.key}: importing {len(missing)} of {len(self.images)} images"
            + (f" (the others linked from store {base.name})" if base is not None else "")
        )
        with _Containerd(partial / "root") as containerd:
            for image in missing:
                step = time.monotonic()
                containerd.ctr(
                    "images", "import", f"--snapshotter={SNAPSHOTTER}", str(image.archive)
                )
                _log(f"  {image.name}: imported in {time.monotonic() - step:.0f}s")
            if extra:
                # --sync: containerd's garbage collector drops their layers before we stop it.
                containerd.ctr("images", "rm", "--sync", *extra)
        (partial / "images.json").write_text(json.dumps(self.refs, indent=1) + "\n")
        (partial / ".complete").touch()
        shutil.rmtree(self.path, ignore_errors=True)
        partial.rename(self.path)
        _log(f"containerd store {self.key}: made in {time.monotonic() - started:.0f}s")
        prune(keep={self.path})


class _Containerd:
    """A containerd that only imports: no CRI, no network, its mounts in a private namespace."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = Path(tempfile.mkdtemp(prefix="adn-store-"))
        self.socket = self.tmp / "containerd.sock"
        self.process: ManagedProcess | None = None

    def __enter__(self) -> _Containerd:
        config = self.tmp / "config.toml"
        config.write_text(
            f"""\
version = 2
root = "{self.root}"
state = "{self.tmp / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.tmp / "opt"}"
"""
        )
        self.process = ManagedProcess(
            "containerd-store",
            ["unshare", "--mount", "--propagation", "private", "containerd", f"--config={config}"],
            log_path=self.tmp / "containerd.log",
        )
        self.process.start()
        process = self.process

        def serving() -> bool:
            process.check_alive()
            return self.ctr("version", check=False) is not None

        wait_until(serving, timeout=60, what="containerd (image store)", log_path=process.log_path)
        return self

    def ctr(self, *args: str, check: bool = True) -> str | None:
        result = subprocess.run(
            ["nice", "-n", "10", "ctr", f"--address={self.socket}", f"--namespace={NAMESPACE}",
             *args],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            if check:
                raise ServiceError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
            return None
        return result.stdout

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop(timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)


def prune(*, keep: set[Path], older_than_days: float = KEEP_UNUSED_DAYS) -> list[str]:
    """Deletes stores (and builds left half-done) no node used for `older_than_days`, skipping
    any being copied or built; returns their names. Lock files stay: deleting one another
    process has open would let two processes hold "the" lock at once."""
    removed: list[str] = []
    cutoff = time.time() - older_than_days * 86400
    for store in stores_dir().iterdir():
        if not store.is_dir() or store in keep:
            continue
        used = store / "last-used"
        with contextlib.suppress(OSError):
            if (used if used.exists() else store).stat().st_mtime > cutoff:
                continue
        key = store.name.removesuffix(".partial")
        with (stores_dir() / f"{key}.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being copied or built right now
            shutil.rmtree(store, ignore_errors=True)
            removed.append(store.name)
    if removed:
        _log(f"containerd stores unused for {older_than_days:g} days removed: {removed}")
    return removed


def seed_root(images: Sequence[BuiltImage], target: Path) -> None:
    """A new node's containerd root holding `images` (see the module's docstring)."""
    ImageStore.of(images).copy_to(target)
