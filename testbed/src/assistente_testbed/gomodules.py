"""Third-party sources read at test time from the Go module cache (never vendored here): the
pinned module is downloaded once through the Go module proxy."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from assistente_testbed.paths import read_versions, repo_root


def module_dir(module: str, version_key: str) -> Path:
    """The unpacked source of `module` at the version pinned as `version_key` in
    hack/versions.env."""
    version = read_versions()[version_key]
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
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(json.loads(out.stdout)["Dir"])
