"""Bad config stops the program with a clear message before any resource is registered; the
documentation of the keys and the example stacks stay true to the code."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from assistente_pulumi import automation
from assistente_pulumi import config as stack_config
from conftest import (
    PULUMI_DIR,
    TEST_SECRETS,
    Deploy,
    example_config,
    is_secure_tree,
    run_failing_program,
    secret_data,
    secure_keys,
)

STACKS = ("aws", "azure", "gcp", "onprem")
ONPREM_SECRETS = {"datajudApiKey": TEST_SECRETS["datajudApiKey"]}


def with_values(stack: str, **changes: Any) -> dict[str, Any]:
    config = example_config(stack)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = config
        for parent in parents:
            target[parent] = dict(target.get(parent) or {})
            target = target[parent]
        target[leaf] = value
    return config


@pytest.mark.parametrize(
    ("stack", "region", "hint"),
    [
        ("aws", "sa-east-7", "sa-east-1"),
        ("azure", "brasilsouth", "brazilsouth"),
        ("gcp", "southamerica-east", "southamerica-east1"),
    ],
)
def test_unknown_region_is_refused_with_a_hint(stack: str, region: str, hint: str) -> None:
    message = run_failing_program(stack, with_values(stack, region=region))
    assert f"região desconhecida para {stack}: '{region}'" in message
    assert hint in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"postgres__readReplicas": 0}, "postgres.readReplicas: deve ser maior ou igual a 1"),
        ({"redis__replicas": 0}, "redis.replicas: deve ser maior ou igual a 1"),
        (
            {"cluster__appPool__nodeCount": 0},
            "cluster.appPool.nodeCount: deve ser maior ou igual a 1",
        ),
        (
            {"cluster__dataPool__nodeCount": -3},
            "cluster.dataPool.nodeCount: deve ser maior ou igual a 1",
        ),
    ],
)
def test_replica_counts_below_one_are_refused(change: dict[str, Any], expected: str) -> None:
    assert expected in run_failing_program("aws", with_values("aws", **change))


@pytest.mark.parametrize("stack", ["aws", "azure", "gcp"])
def test_missing_database_password_is_refused(stack: str) -> None:
    secrets = {key: value for key, value in TEST_SECRETS.items() if key != "postgresPassword"}
    message = run_failing_program(stack, example_config(stack), secrets=secrets)
    assert "postgresPassword: obrigatório" in message


def test_missing_redis_token_on_aws_is_refused() -> None:
    secrets = {key: value for key, value in TEST_SECRETS.items() if key != "redisPassword"}
    assert "redisPassword: obrigatório na AWS" in run_failing_program(
        "aws", example_config("aws"), secrets=secrets
    )


@pytest.mark.parametrize("stack", STACKS)
def test_missing_datajud_key_is_refused(stack: str) -> None:
    secrets = {key: value for key, value in TEST_SECRETS.items() if key != "datajudApiKey"}
    if stack == "onprem":
        secrets = {}
    message = run_failing_program(stack, example_config(stack), secrets=secrets)
    assert (
        "datajudApiKey: o recurso lê a chave da API pública do DataJud do Secret tjxx-datajud"
        in message
    )


def test_an_enabled_channel_needs_its_secret_too() -> None:
    config = with_values(
        "onprem",
        assistantSpec={
            "channels": {"telegram": {"enabled": True, "secretRef": {"name": "tjxx-telegram"}}}
        },
    )
    message = run_failing_program("onprem", config, secrets=ONPREM_SECRETS)
    assert "channelSecrets.telegram: o canal telegram está habilitado" in message


def test_an_enabled_channel_gets_its_secret(deploy: Deploy) -> None:
    config = with_values(
        "onprem",
        assistantSpec={
            "channels": {"telegram": {"enabled": True, "secretRef": {"name": "tjxx-telegram"}}}
        },
    )
    telegram = {"BOT_TOKEN": "token-de-teste", "WEBHOOK_SECRET": "segredo-de-teste"}
    secrets = {**ONPREM_SECRETS, "channelSecrets": {"telegram": telegram}}
    assert secret_data(deploy("onprem", config, secrets=secrets), "tjxx-telegram") == telegram


def test_secret_in_clear_is_refused() -> None:
    plaintext = {"channelSecrets": {"telegram": {"BOT_TOKEN": "em-claro-0123456789"}}}
    message = run_failing_program(
        "onprem", example_config("onprem"), secrets={}, plaintext=plaintext
    )
    assert "channelSecrets: é um segredo; defina-o com `pulumi config set --secret" in message


def test_open_kubernetes_api_is_refused() -> None:
    config = with_values("gcp", cluster__apiAllowedCidrs=["0.0.0.0/0"])
    assert "0.0.0.0/0 abriria a API do Kubernetes" in run_failing_program("gcp", config)


def test_unknown_key_and_bad_cloud_are_named() -> None:
    config = {**with_values("azure", cloud="openstack"), "postgress": {}}
    message = run_failing_program("azure", config)
    assert (
        "cloud: deve ser um de: 'aws', 'azure', 'gcp' ou 'onprem'" in message
        or "cloud: deve ser um de" in message
    )


def test_invalid_resource_spec_is_reported_before_anything_is_created() -> None:
    patch = {"api": {"autoscaling": {"minReplicas": 9, "maxReplicas": 3}}}
    message = run_failing_program(
        "onprem", with_values("onprem", assistantSpec=patch), secrets=ONPREM_SECRETS
    )
    assert "autoscaling.minReplicas deve ser menor ou igual a autoscaling.maxReplicas" in message


def test_managed_clouds_keep_their_managed_databases() -> None:
    patch = {"postgres": {"mode": "cloudnativepg"}}
    message = run_failing_program("aws", with_values("aws", assistantSpec=patch))
    assert "não mude postgres.mode nem redis.mode" in message


def test_every_problem_is_listed_at_once() -> None:
    config = with_values("aws", region="nowhere-1", postgres__readReplicas=0)
    message = run_failing_program("aws", config, secrets={})
    for expected in ("region:", "postgres.readReplicas", "postgresPassword", "redisPassword"):
        assert expected in message


# --- documentation and examples --------------------------------------------------------------


def documented_keys() -> dict[str, dict[str, Any]]:
    project = yaml.safe_load((PULUMI_DIR / "Pulumi.yaml").read_text())
    keys: dict[str, dict[str, Any]] = project["template"]["config"]
    return keys


def test_pulumi_yaml_documents_exactly_the_keys_the_program_reads() -> None:
    read = {field.alias or name for name, field in stack_config.StackConfig.model_fields.items()}
    assert set(documented_keys()) == read
    for key, doc in documented_keys().items():
        assert len(doc["description"]) > 20, key
        assert bool(doc.get("secret")) == (key in stack_config.SECRET_KEYS), key


@pytest.mark.parametrize("stack", STACKS)
def test_example_stacks_hold_secrets_only_as_secure_values(stack: str) -> None:
    document = yaml.safe_load((PULUMI_DIR / f"Pulumi.{stack}.yaml").read_text())
    for key in stack_config.SECRET_KEYS:
        value = document["config"].get(f"assistente-digital:{key}")
        assert value is None or is_secure_tree(value), f"{key} in clear in Pulumi.{stack}.yaml"
    expected = {"datajudApiKey"} | ({"postgresPassword"} if stack != "onprem" else set())
    expected |= {"redisPassword"} if stack == "aws" else set()
    assert set(secure_keys(stack)) == expected
    assert "encryptionsalt" in document


def test_the_local_cluster_stack_takes_the_real_nodes_images_and_database(tmp_path: Any) -> None:
    """`make pulumi-up STACK=onprem` after `make cluster`: every image the resource and the
    operator run is one the node holds, and the database is the one its pods reach; the local
    sizing stays (merge patch, not replacement)."""
    password = tmp_path / "password"
    password.write_text("senha-do-banco-local-0123\n")
    images = {
        name: f"localhost/assistente-digital/{name}:0123abcd"
        for name in ("api", "worker", "rasa", "actions", "operator", "redis", "redis-exporter")
    }
    rasa_password = tmp_path / "rasa-password"
    rasa_password.write_text("senha-do-rasa-local-0123\n")
    info = tmp_path / "local-cluster.json"
    info.write_text(
        json.dumps(
            {
                "kubeconfig": str(tmp_path / "kubeconfig"),
                "images": images,
                "postgres": {
                    "host": "10.244.0.1",
                    "port": 5432,
                    "dbname": "assistente",
                    "user": "postgres",
                    "passwordFile": str(password),
                },
                "rasaPostgres": {
                    "dbname": "rasa",
                    "user": "rasa",
                    "passwordFile": str(rasa_password),
                },
            }
        )
    )
    values = automation.LocalCluster.from_info(info, tmp_path / "state").prepare()
    assert values["operatorImage"] == images["operator"]
    spec = values["assistantSpec"]
    assert spec["api"]["image"] == images["api"]
    assert spec["api"]["autoscaling"]["maxReplicas"] == 12
    assert spec["worker"]["image"] == images["worker"]
    assert spec["nlu"]["image"] == images["rasa"]
    assert spec["nlu"]["replicas"] == 1
    assert spec["actions"]["image"] == images["actions"]
    assert spec["redis"]["inCluster"]["image"] == images["redis"]
    assert spec["redis"]["inCluster"]["exporterImage"] == images["redis-exporter"]
    assert spec["redis"]["inCluster"]["persistence"] == {"enabled": False}
    assert values["externalPostgres"]["host"] == "10.244.0.1"
    assert values["postgresPassword"] == "senha-do-banco-local-0123"
    assert values["rasaPostgres"] == {"dbname": "rasa", "user": "rasa"}
    assert values["rasaPostgresPassword"] == "senha-do-rasa-local-0123"
    assert values["kubeconfig"] == str(tmp_path / "kubeconfig")
