"""What the stacks install on the cluster, as plain dicts (no Pulumi resources, no cloud calls).

The operator's install base and the AssistenteDigital come from the cloud's kustomize overlay
(``overlays/<cloud>``), so `kubectl apply -k`, Argo CD and Pulumi install the same objects.
The stack's own settings are JSON merge patches on the resource's spec, and the result is
checked with the operator's models before anything is created.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import yaml
from assistente_operator.models import AssistenteDigital, Channels, PostgresMode, StoreMode
from pydantic import ValidationError

from assistente_pulumi.config import Cloud, ConfigError, StackConfig, describe_errors

Manifest = dict[str, Any]

REPO: Final = Path(__file__).resolve().parents[3]
CHANNELS: Final = tuple(Channels.model_fields)
ASSISTANT_KIND: Final = "AssistenteDigital"
ASSISTANT_API_VERSION: Final = "assistente.digital/v1alpha1"
OPERATOR_DEPLOYMENT: Final = "assistente-operator"
OPERATOR_INSTALL: Final = REPO / "operator" / "config" / "default"
ARGOCD_BOOTSTRAP: Final = REPO / "argocd" / "bootstrap"


@dataclass(frozen=True)
class Overlay:
    """A rendered overlay, split into what Pulumi installs in order."""

    definitions: list[Manifest]
    """Namespaces and CustomResourceDefinitions: everything else needs them first."""
    operator: list[Manifest]
    """The rest of the operator's install base (RBAC, Deployment)."""
    assistant: Manifest
    """The AssistenteDigital of the overlay."""


def kustomize_command() -> list[str]:
    """`kustomize`, or `kubectl kustomize` when only kubectl is installed."""
    explicit = os.environ.get("KUSTOMIZE")
    if explicit:
        return [explicit, "build"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    raise ConfigError(
        "kustomize não encontrado: instale kustomize ou kubectl, ou aponte KUSTOMIZE para ele"
    )


@functools.cache
def _render(directory: Path) -> str:
    # Cached: one program run (and a test session) renders each overlay once.
    result = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ConfigError(f"kustomize build {directory} falhou:\n{result.stderr.strip()}")
    return result.stdout


def kustomize_build(directory: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(_render(directory)) if doc]


def load_overlay(cloud: Cloud) -> Overlay:
    """The operator's install base and the cloud's overlay (the court's assistant).

    The overlay also says how its Secrets arrive when Argo CD installs it (External Secrets on
    the clouds); this stack writes the Secrets itself, so it takes only the Namespace and the
    AssistenteDigital from it.
    """
    install = kustomize_build(OPERATOR_INSTALL)
    documents = kustomize_build(REPO / "overlays" / cloud)
    assistants = [doc for doc in documents if doc["kind"] == ASSISTANT_KIND]
    if len(assistants) != 1:
        raise ConfigError(f"overlays/{cloud} deve ter exatamente um {ASSISTANT_KIND}")
    definitions = [
        d for d in (*install, *documents) if d["kind"] in ("Namespace", "CustomResourceDefinition")
    ]
    operator = [d for d in install if d not in definitions]
    return Overlay(definitions=definitions, operator=operator, assistant=assistants[0])


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def managed_stores_patch(name: str) -> Manifest:
    """Points the resource at the managed PostgreSQL and Redis a cloud stack creates."""
    return {
        "postgres": {
            "mode": PostgresMode.EXTERNAL.value,
            "external": {"secretRef": {"name": f"{name}-postgres"}},
            "cloudnativepg": None,
        },
        "redis": {
            "mode": StoreMode.EXTERNAL.value,
            "external": {"secretRef": {"name": f"{name}-redis"}},
            "inCluster": None,
        },
    }


@dataclass(frozen=True)
class Assistant:
    body: Manifest
    """The resource as it will be applied (the overlay's, patched; server defaults left out)."""
    model: AssistenteDigital
    """The same, parsed by the operator's models (defaults filled in)."""


def assistant_resource(config: StackConfig, overlay_assistant: Manifest) -> Assistant:
    """The overlay's resource with the stack's patches, validated like the API server would."""
    body = copy.deepcopy(overlay_assistant)
    name = body["metadata"]["name"]
    spec = body.get("spec") or {}
    if config.cloud != "onprem":
        spec = merge_patch(spec, managed_stores_patch(name))
    spec = merge_patch(spec, config.assistant_spec)
    body["spec"] = spec
    try:
        assistant = AssistenteDigital.from_body(body)
    except ValidationError as error:
        problems = [f"assistantSpec: {problem}" for problem in describe_errors(error)]
        message = "\n".join(["o AssistenteDigital resultante é inválido:", *problems])
        raise ConfigError(message) from None
    if config.cloud != "onprem":
        stores = assistant.spec
        if stores.postgres.mode != PostgresMode.EXTERNAL or stores.redis.mode != StoreMode.EXTERNAL:
            raise ConfigError(
                f"assistantSpec: em {config.cloud} o PostgreSQL e o Redis são os gerenciados "
                "que esta stack cria; não mude postgres.mode nem redis.mode"
            )
    return Assistant(body=body, model=assistant)


def assistant_manifest(
    assistant: Assistant, *, wait_for_ready: bool, extra_annotations: Mapping[str, str]
) -> Manifest:
    """The resource as Pulumi applies it; waitFor makes `pulumi up` wait for Ready."""
    annotations = dict(extra_annotations)
    if wait_for_ready:
        annotations["pulumi.com/waitFor"] = "condition=Ready"
    metadata = assistant.model.metadata
    return {
        "apiVersion": ASSISTANT_API_VERSION,
        "kind": ASSISTANT_KIND,
        "metadata": {
            "name": metadata.name,
            "namespace": metadata.namespace,
            "annotations": annotations,
        },
        "spec": copy.deepcopy(assistant.body["spec"]),
    }


def with_operator_image(objects: Sequence[Manifest], image: str | None) -> list[Manifest]:
    """The install base with the operator's image replaced (a local build, a mirror)."""
    result = copy.deepcopy(list(objects))
    if image is None:
        return result
    for obj in result:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == OPERATOR_DEPLOYMENT:
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
    return result


@dataclass(frozen=True)
class SecretRefs:
    """Names of the Secrets the resource refers to, by what they hold."""

    postgres: str | None
    redis: str | None
    channels: dict[str, str]
    """Channels with credentials (WhatsApp, Telegram, voice) that are enabled."""
    datajud: tuple[str, str] | None = None
    """(Secret, key) of the DataJud API key the action server reads."""
    security: str | None = None
    """The components' credentials (Redis password, Rasa's token, the audit key)."""
    rasa_database: str | None = None
    """Rasa's own database user, in the layout of the resource's postgres.mode."""
    rasa_database_mode: PostgresMode = PostgresMode.CLOUDNATIVEPG
    unsupported: tuple[str, ...] = ()
    """References this stack cannot fill (e.g. backup credentials): the court creates them."""


def secret_refs(assistant: AssistenteDigital) -> SecretRefs:
    spec = assistant.spec
    postgres = (
        spec.postgres.external.secret_ref.name
        if spec.postgres.mode == PostgresMode.EXTERNAL and spec.postgres.external
        else None
    )
    redis = (
        spec.redis.external.secret_ref.name
        if spec.redis.mode == StoreMode.EXTERNAL and spec.redis.external
        else None
    )
    channels: dict[str, str] = {}
    for channel in CHANNELS:
        settings = getattr(spec.channels, channel)
        # Client channels (web, mobile) speak the web contract and carry no credentials.
        secret_ref = getattr(settings, "secret_ref", None)
        if settings.enabled and secret_ref is not None:
            channels[channel] = secret_ref.name
    datajud = spec.actions.datajud
    backup = spec.postgres.cloudnativepg.backup
    unsupported = (
        (backup.credentials_secret_ref.name,)
        if spec.postgres.mode == PostgresMode.CLOUDNATIVEPG
        and backup.enabled
        and backup.credentials_secret_ref
        else ()
    )
    rasa = spec.postgres.rasa_secret_ref
    return SecretRefs(
        postgres=postgres,
        redis=redis,
        channels=channels,
        datajud=(datajud.api_key_secret_ref.name, datajud.api_key_secret_ref.key)
        if datajud
        else None,
        security=spec.security.secret_ref.name if spec.security is not None else None,
        rasa_database=rasa.name if rasa is not None else None,
        rasa_database_mode=spec.postgres.mode,
        unsupported=unsupported,
    )


def check_secrets(config: StackConfig, refs: SecretRefs) -> None:
    """Every Secret the resource refers to must have its values in the stack's config."""
    problems: list[str] = []
    for channel in refs.channels:
        if not config.channel_secrets.get(channel):
            problems.append(
                f"channelSecrets.{channel}: o canal {channel} está habilitado e precisa do seu "
                f"Secret {refs.channels[channel]} (ex.: pulumi config set --secret --path "
                f"'channelSecrets.{channel}.<CHAVE>' ...)"
            )
    unused = sorted(set(config.channel_secrets) - set(refs.channels))
    if unused:
        problems.append(f"channelSecrets: canais não habilitados no recurso: {', '.join(unused)}")
    if config.cloud == "onprem" and refs.postgres is not None:
        if config.external_postgres is None:
            problems.append(
                "externalPostgres: o recurso usa postgres.mode external; informe host, port, "
                "dbname e user do servidor"
            )
        if config.postgres_password is None:
            problems.append("postgresPassword: obrigatório com postgres.mode external")
        if refs.rasa_database is not None and config.rasa_postgres_password is None:
            problems.append(
                f"rasaPostgresPassword: obrigatório com postgres.mode external (a senha do "
                f"usuário {config.rasa_postgres.user}, dono do banco "
                f"{config.rasa_postgres.dbname}, que o DBA criou para o Rasa)"
            )
    if refs.datajud is not None and config.datajud_api_key is None:
        problems.append(
            f"datajudApiKey: o recurso lê a chave da API pública do DataJud do Secret "
            f"{refs.datajud[0]}; defina-a com pulumi config set --secret datajudApiKey ..."
        )
    if config.cloud == "onprem" and refs.redis is not None:
        problems.append(
            "assistantSpec: redis.mode external não é suportado em onprem (use o Redis do cluster)"
        )
    if problems:
        raise ConfigError("segredos do recurso:\n" + "\n".join(f"  - {p}" for p in problems))


def argocd_root_application(config: StackConfig) -> Manifest:
    """`argocd/bootstrap/root-app.yaml` pointed at the stack's repository and revision."""
    app: Manifest = yaml.safe_load((ARGOCD_BOOTSTRAP / "root-app.yaml").read_text())
    settings = config.argocd
    app["metadata"]["namespace"] = settings.namespace
    app["spec"]["source"]["repoURL"] = settings.repo_url
    app["spec"]["source"]["targetRevision"] = settings.target_revision
    app["spec"]["source"]["path"] = settings.path
    app["spec"]["destination"]["namespace"] = settings.namespace
    return app


def argocd_bootstrap_objects(config: StackConfig) -> list[Manifest]:
    """What the root application needs beside it (docs/gitops.md): its AppProject, and this
    cluster registered for the ApplicationSet (kind of cluster and revision as labels).

    The health checks of argocd/bootstrap/argocd-cm.yaml go into Argo CD's own argocd-cm, which
    its install owns: `kubectl apply --server-side -f argocd/bootstrap/argocd-cm.yaml -n argocd`.
    """
    settings = config.argocd
    project: Manifest = yaml.safe_load((ARGOCD_BOOTSTRAP / "project.yaml").read_text())
    project["metadata"]["namespace"] = settings.namespace
    project["spec"]["sourceRepos"] = [settings.repo_url]
    registration: Manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "cluster-in-cluster",
            "namespace": settings.namespace,
            "labels": {
                "argocd.argoproj.io/secret-type": "cluster",
                "assistente.digital/overlay": config.cloud,
                "assistente.digital/revision": settings.target_revision,
            },
        },
        "type": "Opaque",
        "stringData": {
            "name": "in-cluster",
            "server": "https://kubernetes.default.svc",
            "config": '{"tlsClientConfig":{"insecure":false}}',
        },
    }
    return [project, registration]


def postgres_uri(user: str, password: str, host: str, port: int | str, dbname: str) -> str:
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{dbname}"


def redis_url(host: str, port: int | str, password: str | None, *, tls: bool) -> str:
    scheme = "rediss" if tls else "redis"
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}{host}:{port}/0"
