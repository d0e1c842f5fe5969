"""The image archive cache (images.py) stays bounded: building a new archive of an image deletes
its older ones beyond the few used last, never one another checkout holds, never another image's.
Building images for real is exercised by every real-node suite."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from assistente_testbed import images
from assistente_testbed.images import BuiltImage, ImageCache, prune_archives


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return images.images_dir()


def _archive(cache: Path, name: str, key: str, *, used_hours_ago: float) -> Path:
    path = cache / f"{name}-{key * 16}.tar"
    path.write_bytes(b"layers")
    when = time.time() - used_hours_ago * 3600
    os.utime(path, (when, when))
    return path


def test_prune_keeps_the_archives_used_last_and_one_in_use(cache: Path) -> None:
    newest, second, busy, oldest = (
        _archive(cache, "api", key, used_hours_ago=hours)
        for key, hours in (("a", 1), ("b", 2), ("c", 3), ("d", 4))
    )
    other_image = _archive(cache, "api-base", "e", used_hours_ago=9)
    half_built = cache / f"api-{'f' * 16}.partial"
    half_built.write_bytes(b"half")
    with busy.with_suffix(".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another checkout checking or building it
        removed = prune_archives("api", keep=2)
    assert removed == [oldest.name]
    for kept in (newest, second, busy, other_image, half_built):
        assert kept.exists(), kept.name
    assert oldest.with_suffix(".lock").exists()  # locks outlive their archives


class _Recipe:
    """A recipe whose archive is already in the cache: nothing is built."""

    def bases(self) -> tuple[str, ...]:
        return ()

    def inputs(self, bases: Mapping[str, BuiltImage]) -> list[bytes]:
        return [b"tiny"]

    def build(self, *args: object) -> None:
        raise AssertionError("a cached image must not be built")


def test_a_cached_archive_counts_as_just_used(cache: Path) -> None:
    image_cache = ImageCache()
    image_cache.recipes = {"tiny": _Recipe()}  # type: ignore[dict-item]
    key = images._sha256(b"tiny")[:16]
    archive = cache / f"tiny-{key}.tar"
    archive.write_bytes(b"layers")
    week_ago = time.time() - 7 * 86400
    os.utime(archive, (week_ago, week_ago))
    (found,) = image_cache.ensure(["tiny"]).values()
    assert found.archive == archive
    assert archive.stat().st_mtime > time.time() - 60
