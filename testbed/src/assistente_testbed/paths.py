"""Where the testbed finds the repository, its caches and its runtime state."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout this package was installed from (an editable workspace member)."""
    override = os.environ.get("ASSISTENTE_REPO_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[3]


def cache_root() -> Path:
    """Heavy, rebuildable artefacts (Go binaries, Rasa venv and models) live outside the repo."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assistente-digital"


def state_dir() -> Path:
    """Runtime state of long-running local services (`make up`, `make cluster`): git-ignored."""
    path = repo_root() / ".local"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_versions() -> dict[str, str]:
    """The pins in hack/versions.env (KEY=VALUE lines, `#` comments)."""
    versions: dict[str, str] = {}
    for raw in (repo_root() / "hack" / "versions.env").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions
