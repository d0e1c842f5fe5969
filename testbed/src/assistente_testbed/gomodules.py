"""Third-party sources read at test time from the Go module cache (never vendored here): the
pinned module is downloaded once through the Go module proxy."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from assistente_testbed.paths import read_versions, repo_root
from assistente_testbed.process import ServiceError


def go_module_dir(module: str, version: str) -> Path:
    """The extracted tree of `module@version`, downloaded once through the Go module proxy."""
    env = dict(
        os.environ,
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",
        GOPROXY=os.environ.get("GOPROXY", "https://proxy.golang.org"),
    )
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=repo_root() / "tools" / "go" / "crds",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise ServiceError(f"go mod download {module}@{version} failed: {out.stderr.strip()}")
    return Path(json.loads(out.stdout)["Dir"])


def module_dir(module: str, version_key: str) -> Path:
    """The unpacked source of `module` at the version pinned as `version_key` in
    hack/versions.env."""
    return go_module_dir(module, read_versions()[version_key])
