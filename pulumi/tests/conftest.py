"""Pulumi mocks for the four stacks: the cloud APIs answer with plausible outputs, and every
registered resource is recorded so tests can assert on what a real `up` would ask for."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi.runtime
import pytest
import yaml

PROJECT = "assistente-digital"
PULUMI_DIR = Path(__file__).resolve().parents[1]

# Test values for the secrets the examples hold as `secure:` placeholders.
TEST_SECRETS: dict[str, Any] = {
    "postgresPassword": "senha-de-teste-0123456789",
    "redisPassword": "token-de-teste-0123456789",
    "datajudApiKey": "chave-datajud-de-teste",
}
KUBECONFIG = json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": []})


@dataclass(frozen=True)
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None


@dataclass
class Recorder(pulumi.runtime.Mocks):
    """Mocks that remember what was registered and fill in the outputs the program reads."""

    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), args.provider))
        outputs = dict(args.inputs)
        outputs.update(_fake_outputs(args.typ, args.name))
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return _fake_invoke(args.token, args.args), []

    # --- queries ----------------------------------------------------------------------------

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def kubernetes(self, kind: str) -> list[Registered]:
        return [
            r
            for r in self.resources
            if r.typ.startswith("kubernetes:") and r.typ.endswith(f":{kind}")
        ]


def _fake_invoke(token: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Answers of the cloud functions the programs call."""
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {
            "names": ["sa-east-1a", "sa-east-1b", "sa-east-1c"],
            "zoneIds": ["z1", "z2", "z3"],
        }
    if token == "azure-native:containerservice:listManagedClusterUserCredentials":
        value = base64.b64encode(KUBECONFIG.encode()).decode()
        return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
    if token == "azure-native:redis:listRedisKeys":
        return {"primaryKey": "chave-primaria", "secondaryKey": "chave-secundaria"}
    if token == "azure-native:authorization:getClientConfig":
        return {
            "clientId": "c",
            "objectId": "o",
            "subscriptionId": "s",
            "tenantId": "00000000-0000-0000-0000-000000000000",
        }
    if token == "gcp:organizations/getProject:getProject":
        return {"number": "123456789012", "projectId": args.get("projectId")}
    raise AssertionError(f"unexpected invoke {token}")


def _fake_outputs(typ: str, name: str) -> dict[str, Any]:
    host = f"{name}.interno.exemplo"
    fakes: dict[str, dict[str, Any]] = {
        "aws:eks/cluster:Cluster": {
            "endpoint": f"https://{host}",
            "certificateAuthority": {"data": "Q0E="},
        },
        "aws:rds/instance:Instance": {"address": host, "endpoint": f"{host}:5432"},
        "aws:elasticache/replicationGroup:ReplicationGroup": {"primaryEndpointAddress": host},
        "aws:kms/key:Key": {"arn": f"arn:aws:kms:sa-east-1:111111111111:key/{name}", "keyId": name},
        "azure-native:dbforpostgresql:Server": {"fullyQualifiedDomainName": host},
        "azure-native:redis:Redis": {"hostName": host, "sslPort": 6380},
        "gcp:sql/databaseInstance:DatabaseInstance": {"privateIpAddress": f"10.200.0.{len(name)}"},
        "gcp:redis/instance:Instance": {
            "host": "10.200.1.5",
            "port": 6378,
            "authString": "auth-gcp",
        },
        "gcp:container/cluster:Cluster": {
            "endpoint": "34.0.0.1",
            "masterAuth": {"clusterCaCertificate": "Q0E="},
        },
    }
    return fakes.get(typ, {})


def example_config(stack: str) -> dict[str, Any]:
    """The plain values of Pulumi.<stack>.yaml (secure placeholders left out)."""
    document = yaml.safe_load((PULUMI_DIR / f"Pulumi.{stack}.yaml").read_text())
    values: dict[str, Any] = {}
    for full_key, value in document["config"].items():
        namespace, _, key = full_key.partition(":")
        assert namespace == PROJECT, full_key
        if is_secure_tree(value):
            continue
        values[key] = value
    return values


def is_secure_tree(value: Any) -> bool:
    if isinstance(value, Mapping):
        return set(value) == {"secure"} or all(is_secure_tree(v) for v in value.values())
    return False


def secure_keys(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((PULUMI_DIR / f"Pulumi.{stack}.yaml").read_text())
    return {
        key.partition(":")[2]: value
        for key, value in document["config"].items()
        if is_secure_tree(value)
    }


Deploy = Callable[..., Recorder]


# pulumi.runtime.test waits for every registration the program started; it is untyped.
_pulumi_test = cast(Callable[[Callable[[], None]], Callable[[], None]], pulumi.runtime.test)


def _configure(
    stack: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, Any] | None,
    plaintext: Mapping[str, Any] | None,
) -> Recorder:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack=stack, preview=False)
    secrets = TEST_SECRETS if secrets is None else secrets
    values = {**config, **secrets, **(plaintext or {})}
    encoded = {
        f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }
    pulumi.runtime.set_all_config(encoded, [f"{PROJECT}:{key}" for key in secrets])
    return recorder


def run_program(
    stack: str,
    config: Mapping[str, Any],
    *,
    secrets: Mapping[str, Any] | None = None,
    plaintext: Mapping[str, Any] | None = None,
) -> Recorder:
    """Runs the program under mocks with ``config`` (and ``secrets`` marked secret); returns
    what it registered. ``plaintext`` values are set without the secret mark."""
    from assistente_pulumi import program

    recorder = _configure(stack, config, secrets, plaintext)
    try:
        _pulumi_test(program.main)()
    finally:
        pulumi.runtime.set_all_config({}, [])
    return recorder


def run_failing_program(
    stack: str,
    config: Mapping[str, Any],
    *,
    secrets: Mapping[str, Any] | None = None,
    plaintext: Mapping[str, Any] | None = None,
) -> str:
    """Runs the program expecting a ConfigError before any resource; returns its message."""
    from assistente_pulumi import program
    from assistente_pulumi.config import ConfigError

    recorder = _configure(stack, config, secrets, plaintext)
    try:
        with pytest.raises(ConfigError) as raised:
            _pulumi_test(program.main)()
    finally:
        pulumi.runtime.set_all_config({}, [])
    assert recorder.resources == [], f"registered before failing: {recorder.resources}"
    return str(raised.value)


@pytest.fixture
def deploy() -> Deploy:
    return run_program


# How the mock monitor hands over a value marked secret: {<signature>: <secret sig>, "value": v}.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and _SECRET_SIG in value


def revealed(value: Any) -> Any:
    """``value`` with every secret wrapper removed (recursively)."""
    if is_secret(value):
        return revealed(value["value"])
    if isinstance(value, Mapping):
        return {key: revealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [revealed(item) for item in value]
    return value


def secret_data(recorder: Recorder, name: str) -> dict[str, str]:
    """The keys of the Kubernetes Secret ``name`` (stringData, and data decoded), asserted to be
    marked secret."""
    secret = next(r for r in recorder.kubernetes("Secret") if r.inputs["metadata"]["name"] == name)
    result: dict[str, str] = {}
    if "stringData" in secret.inputs:
        data = secret.inputs["stringData"]
        assert is_secret(data), f"Secret {name}: stringData is not marked secret"
        result.update(revealed(data))
    if "data" in secret.inputs:
        assert is_secret(secret.inputs["data"]), f"Secret {name}: data is not marked secret"
        for key, value in revealed(secret.inputs["data"]).items():
            result[key] = base64.b64decode(value).decode()
    return result


def assistant_spec(recorder: Recorder) -> dict[str, Any]:
    (assistant,) = recorder.kubernetes("AssistenteDigital")
    spec: dict[str, Any] = revealed(assistant.inputs["spec"])
    return spec
