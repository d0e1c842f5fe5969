"""Runs the program through Pulumi's Automation API, with a CLI built from source.

Where Pulumi's Python language host is installed, `pulumi up` in this folder runs
``__main__.py`` as usual. Where it is not (our test machines build the CLI from the Go module
proxy, and the language host is not served there), the Automation API runs the same program
in-process: the CLI drives the deployment and calls back into this process for the program.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pulumi import automation as auto

from assistente_pulumi.config import PROJECT, SECRET_KEYS
from assistente_pulumi.manifests import merge_patch
from assistente_pulumi.program import main as program

PULUMI_DIR: Final = Path(__file__).resolve().parents[2]
REPO: Final = PULUMI_DIR.parent
KUBERNETES_PROVIDER_VERSION: Final = "4.25.0"


@dataclass(frozen=True)
class Tools:
    """The Pulumi CLI and the Kubernetes provider plugin, as hack/build-tools.sh builds them."""

    cli_bin: Path
    """Directory holding the ``pulumi`` binary."""
    kubernetes_provider: Path
    """The ``pulumi-resource-kubernetes`` binary."""

    @classmethod
    def built(cls) -> Tools:
        """Builds (first time) or finds both tools in the shared cache."""

        def bin_dir(tool: str) -> Path:
            script = REPO / "hack" / "build-tools.sh"
            subprocess.run([str(script), tool], check=True)
            out = subprocess.run(
                [str(script), "--bin-dir", tool], check=True, capture_output=True, text=True
            )
            return Path(out.stdout.strip())

        return cls(
            cli_bin=bin_dir("pulumi"),
            kubernetes_provider=bin_dir("pulumi-kubernetes") / "pulumi-resource-kubernetes",
        )


@dataclass(frozen=True)
class Backend:
    """Where state, plugins and the secrets passphrase live for one checkout (or one test)."""

    state_dir: Path
    home: Path
    passphrase_file: Path

    @classmethod
    def under(cls, root: Path) -> Backend:
        return cls(root / "state", root / "home", root / "passphrase")

    def passphrase(self) -> str:
        """The passphrase of this backend's stacks, created (random, 0600) on first use."""
        if not self.passphrase_file.exists():
            self.passphrase_file.parent.mkdir(parents=True, exist_ok=True)
            self.passphrase_file.touch(mode=0o600)
            self.passphrase_file.write_text(secrets.token_urlsafe(32))
        return self.passphrase_file.read_text().strip()


def _environment(tools: Tools, backend: Backend, *, ambient: bool) -> dict[str, str]:
    """The CLI's environment. With ``ambient``, the caller's PULUMI_BACKEND_URL and
    PULUMI_CONFIG_PASSPHRASE(_FILE) win over the checkout's local backend."""
    path = os.pathsep.join([str(tools.cli_bin), os.environ["PATH"]])
    env = {
        "PATH": path,
        "PULUMI_HOME": str(backend.home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # Plugins come from our own builds only; never download one at run time.
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
    }
    if ambient and os.environ.get("PULUMI_BACKEND_URL"):
        env["PULUMI_BACKEND_URL"] = os.environ["PULUMI_BACKEND_URL"]
    else:
        backend.state_dir.mkdir(parents=True, exist_ok=True)
        env["PULUMI_BACKEND_URL"] = backend.state_dir.as_uri()
    ambient_secret = [
        k for k in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE") if k in os.environ
    ]
    if ambient and ambient_secret:
        env.update({key: os.environ[key] for key in ambient_secret})
    else:
        env["PULUMI_CONFIG_PASSPHRASE"] = backend.passphrase()
    return env


def install_provider(tools: Tools, env: Mapping[str, str]) -> None:
    """Puts the provider we built into PULUMI_HOME's plugin cache (once)."""
    plugin_dir = (
        Path(env["PULUMI_HOME"]) / "plugins" / f"resource-kubernetes-v{KUBERNETES_PROVIDER_VERSION}"
    )
    if (plugin_dir / "pulumi-resource-kubernetes").exists():
        return
    subprocess.run(
        [
            str(tools.cli_bin / "pulumi"),
            "plugin",
            "install",
            "resource",
            "kubernetes",
            KUBERNETES_PROVIDER_VERSION,
            "--file",
            str(tools.kubernetes_provider),
        ],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def stack(
    name: str,
    *,
    tools: Tools,
    backend: Backend,
    work_dir: Path = PULUMI_DIR,
    program_fn: Callable[[], None] = program,
    ambient: bool = False,
) -> auto.Stack:
    """The stack ``name`` of the project in ``work_dir`` (created if new), ready to run."""
    env = _environment(tools, backend, ambient=ambient)
    install_provider(tools, env)
    command = auto.PulumiCommand(root=str(tools.cli_bin.parent))
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        pulumi_home=env["PULUMI_HOME"],
        env_vars=env,
        secrets_provider="passphrase",
        pulumi_command=command,
    )
    return auto.create_or_select_stack(
        stack_name=name, project_name=PROJECT, program=program_fn, opts=workspace
    )


def set_config(target: auto.Stack, values: Mapping[str, Any]) -> None:
    """Sets top-level keys the way `pulumi config set` would; secret keys encrypted."""
    config = {
        f"{PROJECT}:{key}": auto.ConfigValue(
            value=value if isinstance(value, str) else json.dumps(value),
            secret=key in SECRET_KEYS,
        )
        for key, value in values.items()
    }
    target.set_all_config(config)


# --- the local test cluster ---------------------------------------------------------------

# Where each component of the resource takes its image from, by the test bed's image names.
LOCAL_IMAGE_FIELDS: Final = {
    "api": ("api", "image"),
    "worker": ("worker", "image"),
    "rasa": ("nlu", "image"),
    "actions": ("actions", "image"),
    "redis": ("redis", "inCluster", "image"),
    "redis-exporter": ("redis", "inCluster", "exporterImage"),
}


@dataclass(frozen=True)
class LocalCluster:
    """The `onprem` stack pointed at the local test cluster (`make cluster`)."""

    kubeconfig: Path
    root: Path
    """Holds the backend, the passphrase and the stack's work dir."""
    postgres: Mapping[str, Any] | None = None
    """externalPostgres of a real server, e.g. the test bed's; placeholder values otherwise."""
    postgres_password: str | None = None
    images: Mapping[str, str] | None = None
    """The images in the real node's runtime (test bed name -> reference): the operator's and
    every component's. Without them the upstream images are named, which only kwok's simulated
    nodes "run"."""
    rasa_postgres: Mapping[str, Any] | None = None
    """rasaPostgres (dbname, user) of Rasa's own role and database on that server."""
    rasa_postgres_password: str | None = None

    @classmethod
    def from_info(cls, info_file: Path, root: Path) -> LocalCluster:
        """The cluster `make cluster` describes in .local/local-cluster.json: its kubeconfig,
        the images its node holds and the PostgreSQL its pods reach."""
        info = json.loads(info_file.read_text())
        postgres = dict(info["postgres"])
        password = Path(postgres.pop("passwordFile")).read_text().strip()
        if "rasaPostgres" not in info:
            raise ValueError(
                f"{info_file} predates Rasa's own database user: restart the cluster "
                "(make cluster-down && make cluster)"
            )
        rasa = dict(info["rasaPostgres"])
        rasa_password = Path(rasa.pop("passwordFile")).read_text().strip()
        return cls(
            kubeconfig=Path(info["kubeconfig"]),
            root=root,
            postgres=postgres,
            postgres_password=password,
            images=info["images"],
            rasa_postgres=rasa,
            rasa_postgres_password=rasa_password,
        )

    def image_patch(self) -> dict[str, Any]:
        """assistantSpec's images from `images` (a JSON merge patch)."""
        patch: dict[str, Any] = {}
        for name, path in LOCAL_IMAGE_FIELDS.items():
            if self.images is None or name not in self.images:
                continue
            node = patch
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = self.images[name]
        return patch

    @property
    def backend(self) -> Backend:
        return Backend.under(self.root)

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    def prepare(self, name: str = "onprem") -> dict[str, Any]:
        """Lays out the work dir and returns the stack's config: the example's values with the
        overrides of ``local/<name>.yaml``, and random secrets where none were given."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PULUMI_DIR / "Pulumi.yaml", self.work_dir / "Pulumi.yaml")
        example = yaml.safe_load((PULUMI_DIR / f"Pulumi.{name}.yaml").read_text())["config"]
        values: dict[str, Any] = {
            key.partition(":")[2]: value
            for key, value in example.items()
            if key.partition(":")[2] not in SECRET_KEYS
        }
        overrides = yaml.safe_load((PULUMI_DIR / "local" / f"{name}.yaml").read_text())
        values.update(overrides["config"])
        values["kubeconfig"] = str(self.kubeconfig)
        if self.images is not None:
            values["operatorImage"] = self.images["operator"]
            spec = values.get("assistantSpec", {})
            values["assistantSpec"] = merge_patch(spec, self.image_patch())
        if self.postgres is not None:
            values["externalPostgres"] = dict(self.postgres)
        values["postgresPassword"] = self.postgres_password or secrets.token_urlsafe(24)
        if self.rasa_postgres is not None:
            values["rasaPostgres"] = dict(self.rasa_postgres)
        # Without a server (kwok's nodes only), nothing logs in with it.
        values["rasaPostgresPassword"] = self.rasa_postgres_password or secrets.token_hex(24)
        # The local cluster never calls DataJud; the Secret only has to exist.
        values["datajudApiKey"] = secrets.token_urlsafe(24)
        return values

    def stack(self, tools: Tools, name: str = "onprem") -> auto.Stack:
        values = self.prepare(name)
        target = stack(name, tools=tools, backend=self.backend, work_dir=self.work_dir)
        existing = target.get_all_config()
        # Keep secrets across runs (a second `up` must change nothing).
        for key in SECRET_KEYS:
            if f"{PROJECT}:{key}" in existing:
                values.pop(key, None)
        set_config(target, values)
        return target
