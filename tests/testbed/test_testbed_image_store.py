"""The containerd stores real nodes start from (image_store.py): hard links where the content
is immutable, files of its own where containerd writes, and old stores cleaned up without
touching one in use. The stores themselves are exercised by every real-node suite."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest
from assistente_testbed import image_store
from assistente_testbed.image_store import ImageStore, link_tree, prune
from assistente_testbed.images import BuiltImage


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return image_store.stores_dir()


def _containerd_root(path: Path) -> None:
    blob = path / "io.containerd.content.v1.content" / "blobs" / "sha256" / "ab12"
    layer = path / "io.containerd.snapshotter.v1.overlayfs" / "snapshots" / "1" / "fs" / "bin"
    for file, text in (
        (blob, "layer"),
        (layer / "python3", "binary"),
        (path / "io.containerd.metadata.v1.bolt" / "meta.db", "images"),
        (path / "io.containerd.snapshotter.v1.overlayfs" / "metadata.db", "snapshots"),
        (path / image_store.INSTANCE_UUID, "0b0e"),
    ):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)


def test_a_node_shares_layers_and_owns_the_databases(tmp_path: Path) -> None:
    store, node = tmp_path / "store", tmp_path / "node" / "root"
    _containerd_root(store)
    link_tree(store, node)
    blob = Path("io.containerd.content.v1.content/blobs/sha256/ab12")
    layer = Path("io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs/bin/python3")
    for shared in (blob, layer):
        assert (node / shared).stat().st_ino == (store / shared).stat().st_ino
    for own in (
        "io.containerd.metadata.v1.bolt/meta.db",
        "io.containerd.snapshotter.v1.overlayfs/metadata.db",
    ):
        assert (node / own).stat().st_ino != (store / own).stat().st_ino
        (node / own).write_text("written by the node")
        assert (store / own).read_text() in ("images", "snapshots")
    assert not (node / image_store.INSTANCE_UUID).exists()
    assert (store / image_store.INSTANCE_UUID).exists()


def test_the_key_names_the_set_of_images(cache: Path) -> None:
    def image(name: str, key: str) -> BuiltImage:
        return BuiltImage(name, f"localhost/x/{name}:{key}", cache / f"{name}-{key}.tar")

    api, rasa = image("api", "1"), image("rasa", "1")
    assert ImageStore.of([api, rasa]).key == ImageStore.of([rasa, api, api]).key
    assert ImageStore.of([api, rasa]).key != ImageStore.of([image("api", "2"), rasa]).key


def test_prune_removes_old_stores_but_not_one_in_use(cache: Path) -> None:
    old = time.time() - (image_store.KEEP_UNUSED_DAYS + 1) * 86400
    stores = {name: cache / name for name in ("recent", "old", "busy", "old.partial")}
    for name, path in stores.items():
        path.mkdir()
        (path / "last-used").touch()
        if name != "recent":
            os.utime(path / "last-used", (old, old))
            os.utime(path, (old, old))
    with (cache / "busy.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # a node copying it right now
        removed = prune(keep=set())
    assert sorted(removed) == ["old", "old.partial"]
    assert stores["recent"].exists()
    assert stores["busy"].exists()
    assert not stores["old"].exists()
