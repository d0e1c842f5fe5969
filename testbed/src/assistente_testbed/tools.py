"""The Go-built tools of the test bed, built once by hack/build-tools.sh and cached by version."""

from __future__ import annotations

import subprocess
from pathlib import Path

from assistente_testbed.paths import repo_root, state_dir
from assistente_testbed.process import ServiceError

# tool group -> the binaries it provides
TOOLS: dict[str, tuple[str, ...]] = {
    "k8s": ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
    "k8s-node": ("kubelet", "kube-proxy"),
    "coredns": ("coredns",),
    "etcd": ("etcd", "etcdctl"),
    "kwok": ("kwok", "kwokctl"),
    "kustomize": ("kustomize",),
    # One multi-call binary; the role is picked by the name it is started as.
    "argocd": (
        "argocd",
        "argocd-repo-server",
        "argocd-application-controller",
        "argocd-applicationset-controller",
        "argocd-git-ask-pass",
    ),
    "actionlint": ("actionlint",),
    "victorialogs": ("victoria-logs",),
    "otelcol": ("assistente-otelcol",),
}


def _build_script() -> Path:
    return repo_root() / "hack" / "build-tools.sh"


def cached_bin_dir(group: str) -> Path:
    out = subprocess.run(
        [str(_build_script()), "--bin-dir", group], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def ensure_tools(groups: tuple[str, ...] = tuple(TOOLS)) -> Path:
    """Build what is missing (progress goes to stderr) and link every binary into .local/bin."""
    missing = [g for g in groups if not (cached_bin_dir(g) / ".complete").exists()]
    if missing:
        subprocess.run([str(_build_script()), *missing], check=True)
    links = state_dir() / "bin"
    links.mkdir(parents=True, exist_ok=True)
    for group in groups:
        source_dir = cached_bin_dir(group)
        for name in TOOLS[group]:
            link = links / name
            target = source_dir / name
            if link.is_symlink() or link.exists():
                # readlink, not resolve(): some targets are themselves links (argocd's roles).
                if link.is_symlink() and link.readlink() == target:
                    continue
                link.unlink()
            link.symlink_to(target)
    return links


def run_hack_script(script: str, *, timeout: float, repo: Path | None = None) -> Path:
    """Runs a hack/ script (of `repo`, by default this checkout) that prepares something cached
    (progress on stderr) and prints its path as the last line on stdout; returns that path."""
    result = subprocess.run(
        [str((repo or repo_root()) / "hack" / script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(f"hack/{script} failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])
