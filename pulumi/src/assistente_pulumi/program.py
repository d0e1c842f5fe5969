"""The Pulumi program: one per stack, the cloud chosen by the ``cloud`` config key.

Reading order matters: the config, the overlay and the resulting AssistenteDigital are all
validated first, so a bad stack fails before the first resource is registered.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from assistente_operator.models import PostgresMode
from pydantic import SecretStr

from assistente_pulumi import manifests
from assistente_pulumi.components.platform import Platform
from assistente_pulumi.components.workloads import ClusterWorkloads, SecretSpec, WorkloadsArgs
from assistente_pulumi.config import StackConfig, load
from assistente_pulumi.manifests import Manifest, SecretRefs

# The CloudNativePG managed role the operator declares for Rasa (operator builders/postgres.py;
# not imported: the builders pull in the monitoring package, which this project does not need).
RASA_ROLE = "rasa"


@dataclass(frozen=True)
class Plan:
    """Everything decided before any resource exists."""

    config: StackConfig
    overlay: manifests.Overlay
    assistant: Manifest
    namespace: str
    refs: SecretRefs


def plan(config: StackConfig) -> Plan:
    overlay = manifests.load_overlay(config.cloud)
    assistant = manifests.assistant_resource(config, overlay.assistant)
    refs = manifests.secret_refs(assistant.model)
    manifests.check_secrets(config, refs)
    manifest = manifests.assistant_manifest(
        assistant,
        wait_for_ready=config.wait_for_ready,
        extra_annotations={"assistente.digital/stack": pulumi.get_stack()},
    )
    return Plan(config, overlay, manifest, assistant.model.metadata.namespace, refs)


def build_platform(config: StackConfig) -> Platform:
    # Imported here: each cloud SDK is large, and a stack needs only its own.
    if config.cloud == "aws":
        from assistente_pulumi.components.aws import AwsPlatform

        return AwsPlatform("aws", config)
    if config.cloud == "azure":
        from assistente_pulumi.components.azure import AzurePlatform

        return AzurePlatform("azure", config)
    if config.cloud == "gcp":
        from assistente_pulumi.components.gcp import GcpPlatform

        return GcpPlatform("gcp", config)
    from assistente_pulumi.components.onprem import OnPremPlatform

    return OnPremPlatform("onprem", config)


def secret_specs(stack: Plan, platform: Platform) -> list[SecretSpec]:
    """The data of every Secret the resource refers to, in the layouts the operator documents."""
    specs: list[SecretSpec] = []
    postgres = platform.postgres
    if stack.refs.postgres is not None and postgres is not None:
        uri = pulumi.Output.all(postgres.host, postgres.port, postgres.password).apply(
            lambda args: manifests.postgres_uri(
                postgres.user, args[2], args[0], args[1], postgres.dbname
            )
        )
        read_uri = pulumi.Output.all(postgres.read_host, postgres.port, postgres.password).apply(
            lambda args: manifests.postgres_uri(
                postgres.user, args[2], args[0], args[1], postgres.dbname
            )
        )
        specs.append(
            SecretSpec(
                stack.refs.postgres,
                {
                    "uri": pulumi.Output.secret(uri),
                    "ro-uri": pulumi.Output.secret(read_uri),
                    "host": postgres.host,
                    "port": pulumi.Output.from_input(postgres.port).apply(str),
                    "dbname": postgres.dbname,
                    "user": postgres.user,
                    "password": postgres.password,
                },
            )
        )
    redis = platform.redis
    if stack.refs.redis is not None and redis is not None:
        url = pulumi.Output.all(redis.host, redis.port, redis.password).apply(
            lambda args: manifests.redis_url(args[0], args[1], args[2], tls=redis.tls)
        )
        specs.append(
            SecretSpec(
                stack.refs.redis,
                {
                    "url": pulumi.Output.secret(url),
                    "host": redis.host,
                    "port": pulumi.Output.from_input(redis.port).apply(str),
                    "password": redis.password,
                },
            )
        )
    if stack.refs.datajud is not None and stack.config.datajud_api_key is not None:
        name, key = stack.refs.datajud
        value = stack.config.datajud_api_key.get_secret_value()
        specs.append(SecretSpec(name, {key: pulumi.Output.secret(value)}))
    for channel, secret_name in sorted(stack.refs.channels.items()):
        values = stack.config.channel_secrets[channel]
        specs.append(
            SecretSpec(
                secret_name,
                {
                    key: pulumi.Output.secret(value.get_secret_value())
                    for key, value in values.items()
                },
            )
        )
    return specs


def _given_or_generated(
    name: str, values: Mapping[str, SecretStr | None], *, kind: str = "Opaque"
) -> SecretSpec:
    """A Secret of the config's values, each missing one generated (hex: usable in URLs and as
    a Redis password) and kept from the first `up` on."""
    given: dict[str, pulumi.Input[str]] = {
        key: pulumi.Output.secret(value.get_secret_value())
        for key, value in values.items()
        if value is not None
    }
    generated = {key: random.token_hex(32) for key, value in values.items() if value is None}
    return SecretSpec(name, given, type=kind, generated=generated)


def credential_specs(stack: Plan) -> list[SecretSpec]:
    """onprem: the components' credentials (security.secretRef) and Rasa's own database user
    (postgres.rasaSecretRef), from the config or generated."""
    config, refs = stack.config, stack.refs
    specs: list[SecretSpec] = []
    if refs.security is not None:
        given = config.component_secrets
        values = {
            "redis-password": given.redis_password,
            "rasa-token": given.rasa_token,
            "lgpd-audit-key": given.lgpd_audit_key,
        }
        specs.append(_given_or_generated(refs.security, values))
    if refs.rasa_database is None:
        return specs
    if refs.rasa_database_mode == PostgresMode.CLOUDNATIVEPG:
        # CloudNativePG creates the role from this Secret; Rasa then creates its database.
        basic_auth = _given_or_generated(
            refs.rasa_database,
            {"password": config.rasa_postgres_password},
            kind="kubernetes.io/basic-auth",
        )
        data = {"username": RASA_ROLE, **basic_auth.string_data}
        specs.append(SecretSpec(basic_auth.name, data, basic_auth.type, basic_auth.generated))
    else:
        # The DBA created the role and its database (check_secrets asked for both values).
        server, password = config.external_postgres, config.rasa_postgres_password
        assert server is not None
        assert password is not None
        rasa = config.rasa_postgres
        external: dict[str, pulumi.Input[str]] = {
            "host": server.host,
            "port": str(server.port),
            "dbname": rasa.dbname,
            "user": rasa.user,
            "password": pulumi.Output.secret(password.get_secret_value()),
        }
        specs.append(SecretSpec(refs.rasa_database, external))
    return specs


def made_by_hand(stack: Plan) -> list[str]:
    """The Secrets the resource refers to that this stack does not create."""
    names = list(stack.refs.unsupported)
    if stack.config.cloud != "onprem":
        # The clouds' Rasa user lives on the managed server, which this stack cannot reach.
        names += [n for n in (stack.refs.security, stack.refs.rasa_database) if n is not None]
    return names


def main() -> None:
    config = load()
    stack = plan(config)
    platform = build_platform(config)
    secrets = secret_specs(stack, platform)
    if config.cloud == "onprem":
        secrets += credential_specs(stack)
    for secret in secrets:
        platform.store_secret(secret.name, secret.string_data)

    assistant_namespace = next(
        obj
        for obj in stack.overlay.definitions
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] == stack.namespace
    )
    if config.install == "operator":
        args = WorkloadsArgs(
            provider=platform.k8s_provider,
            namespace=stack.namespace,
            definitions=stack.overlay.definitions,
            operator=manifests.with_operator_image(stack.overlay.operator, config.operator_image),
            secrets=secrets,
            assistant=stack.assistant,
            ready_timeout_minutes=config.ready_timeout_minutes,
            depends_on=platform.ready,
        )
    else:
        # Argo CD installs the overlay from Git; Pulumi adds only what Git must not hold.
        args = WorkloadsArgs(
            provider=platform.k8s_provider,
            namespace=stack.namespace,
            definitions=[assistant_namespace],
            operator=manifests.argocd_bootstrap_objects(config),
            secrets=secrets,
            assistant=None,
            argocd_application=manifests.argocd_root_application(config),
            depends_on=platform.ready,
        )
    workloads = ClusterWorkloads("assistente", args)

    pulumi.export("cloud", config.cloud)
    pulumi.export("install", config.install)
    pulumi.export("namespace", stack.namespace)
    pulumi.export("assistant", stack.assistant["metadata"]["name"])
    pulumi.export("secrets", sorted(secret.name for secret in secrets))
    if by_hand := made_by_hand(stack):
        # Named in the outputs so nobody wonders why the resource waits for them.
        pulumi.export("secretsToCreateByHand", by_hand)
    if workloads.assistant is not None:
        pulumi.export("assistantUrn", workloads.assistant.urn)
