"""What every stack installs on its cluster, checked once per cloud under mocks."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from assistente_pulumi.config import Cloud
from assistente_pulumi.manifests import load_overlay
from conftest import (
    PULUMI_DIR,
    TEST_SECRETS,
    Deploy,
    Recorder,
    assistant_spec,
    example_config,
    run_failing_program,
    secret_data,
)

REPO = PULUMI_DIR.parent
OPERATOR_CONFIG = REPO / "operator" / "config"
ONPREM_SECRETS = {"datajudApiKey": TEST_SECRETS["datajudApiKey"]}


def secrets_for(stack: str) -> dict[str, Any]:
    return ONPREM_SECRETS if stack == "onprem" else TEST_SECRETS


def names(records: list[Any]) -> set[str]:
    return {record.inputs["metadata"]["name"] for record in records}


@pytest.mark.parametrize("stack", ["aws", "azure", "gcp", "onprem"])
def test_operator_install_base_and_resource_are_installed(deploy: Deploy, stack: str) -> None:
    recorder = deploy(stack, example_config(stack), secrets=secrets_for(stack))
    crd = yaml.safe_load(
        (OPERATOR_CONFIG / "crd/bases/assistente.digital_assistentesdigitais.yaml").read_text()
    )
    assert names(recorder.kubernetes("CustomResourceDefinition")) == {crd["metadata"]["name"]}
    assert names(recorder.kubernetes("Namespace")) == {
        "assistente-operator-system",
        "assistente-digital",
    }
    (deployment,) = recorder.kubernetes("Deployment")
    assert deployment.inputs["metadata"] == {
        **deployment.inputs["metadata"],
        "name": "assistente-operator",
        "namespace": "assistente-operator-system",
    }
    assert names(recorder.kubernetes("ClusterRole")) == {"assistente-operator"}
    assert names(recorder.kubernetes("ClusterRoleBinding")) == {"assistente-operator"}
    assert names(recorder.kubernetes("ServiceAccount")) == {"assistente-operator"}

    (assistant,) = recorder.kubernetes("AssistenteDigital")
    metadata = assistant.inputs["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("tjxx", "assistente-digital")
    # `pulumi up` waits for the operator to report Ready.
    assert metadata["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    # Every Kubernetes object goes to the stack's cluster, not to an ambient kubeconfig.
    providers = {r.provider for r in recorder.resources if r.typ.startswith("kubernetes:")}
    assert len(providers) == 1
    assert f"{stack}-k8s" in str(providers.pop())


@pytest.mark.parametrize("stack", ["aws", "azure", "gcp"])
def test_managed_clouds_point_the_resource_at_their_databases(deploy: Deploy, stack: str) -> None:
    recorder = deploy(stack, example_config(stack))
    spec = assistant_spec(recorder)
    assert spec["postgres"] == {
        "mode": "external",
        "external": {"secretRef": {"name": "tjxx-postgres"}},
        "rasaSecretRef": {"name": "tjxx-rasa-db"},
    }
    assert spec["redis"] == {"mode": "external", "external": {"secretRef": {"name": "tjxx-redis"}}}
    postgres = secret_data(recorder, "tjxx-postgres")
    assert set(postgres) == {"uri", "ro-uri", "host", "port", "dbname", "user", "password"}
    assert postgres["password"] == TEST_SECRETS["postgresPassword"]
    # Writes go to the HA primary, read-only queries to the read replica.
    assert postgres["host"] in postgres["uri"]
    assert postgres["host"] not in postgres["ro-uri"]
    assert postgres["uri"].startswith(
        f"postgresql://assistente:{TEST_SECRETS['postgresPassword']}@"
    )
    redis = secret_data(recorder, "tjxx-redis")
    assert redis["url"].startswith("rediss://:"), "Redis must be reached over TLS"
    assert secret_data(recorder, "tjxx-datajud") == {"apiKey": "chave-datajud-de-teste"}


@pytest.mark.parametrize("stack", ["aws", "azure", "gcp", "onprem"])
def test_overlay_settings_and_stack_patches_reach_the_resource(
    deploy: Deploy, stack: Cloud
) -> None:
    overlay = yaml.safe_load((REPO / "overlays" / stack / "assistentedigital.yaml").read_text())
    patch = {"api": {"autoscaling": {"maxReplicas": 33}}, "escalation": {"queueLimit": 77}}
    config = {**example_config(stack), "assistantSpec": patch}
    spec = assistant_spec(deploy(stack, config, secrets=secrets_for(stack)))
    assert spec["ingress"]["className"] == overlay["spec"]["ingress"]["className"]
    assert spec["api"]["autoscaling"]["maxReplicas"] == 33
    # From the overlay (its one-million-users sizing), untouched by the stack's patch.
    rendered = load_overlay(stack).assistant["spec"]["api"]["autoscaling"]["minReplicas"]
    assert spec["api"]["autoscaling"]["minReplicas"] == rendered
    assert spec["escalation"]["queueLimit"] == 77


def test_onprem_runs_postgres_and_redis_in_the_cluster(deploy: Deploy) -> None:
    recorder = deploy("onprem", example_config("onprem"), secrets=ONPREM_SECRETS)
    spec = assistant_spec(recorder)
    assert spec["postgres"]["mode"] == "cloudnativepg"
    assert spec["postgres"]["cloudnativepg"]["instances"] == 3  # a primary and two replicas
    assert spec["redis"]["mode"] == "inCluster"
    assert spec["redis"]["inCluster"]["replicas"] == 3
    assert names(recorder.kubernetes("Secret")) == {"tjxx-datajud", "tjxx-security", "tjxx-rasa-db"}
    (provider,) = recorder.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "/etc/assistente/kubeconfig"


def test_onprem_generates_the_credentials_the_config_leaves_out(deploy: Deploy) -> None:
    """The components' Secret and Rasa's CloudNativePG user: given values are used, the others
    generated (test_pulumi_onprem_up checks that a second `up` keeps the first ones)."""
    given = {"componentSecrets": {"rasaToken": "token-do-rasa-dado-0123456789"}}
    recorder = deploy("onprem", example_config("onprem"), secrets={**ONPREM_SECRETS, **given})
    security = secret_data(recorder, "tjxx-security")
    assert security["rasa-token"] == "token-do-rasa-dado-0123456789"
    assert security["redis-password"].isalnum()
    assert len(security["redis-password"]) >= 32
    assert len(security["lgpd-audit-key"]) >= 32
    assert len({security["redis-password"], security["lgpd-audit-key"]}) == 2
    rasa = secret_data(recorder, "tjxx-rasa-db")
    assert rasa["username"] == "rasa"
    assert len(rasa["password"]) >= 32
    (rasa_secret,) = [
        r for r in recorder.kubernetes("Secret") if r.inputs["metadata"]["name"] == "tjxx-rasa-db"
    ]
    assert rasa_secret.inputs["type"] == "kubernetes.io/basic-auth"


def test_onprem_with_an_existing_postgres_server(deploy: Deploy) -> None:
    config = {
        **example_config("onprem"),
        "assistantSpec": {
            "postgres": {"mode": "external", "external": {"secretRef": {"name": "tjxx-db"}}}
        },
        "externalPostgres": {"host": "pg.tjxx.local", "readOnlyHost": "pg-ro.tjxx.local"},
    }
    secrets = {
        **ONPREM_SECRETS,
        "postgresPassword": TEST_SECRETS["postgresPassword"],
        "rasaPostgresPassword": "senha-do-rasa-0123456789",
    }
    recorder = deploy("onprem", config, secrets=secrets)
    data = secret_data(recorder, "tjxx-db")
    assert data["host"] == "pg.tjxx.local"
    assert "@pg-ro.tjxx.local:5432/assistente" in data["ro-uri"]
    # Rasa's own user and database on the same server, as its DBA created them.
    assert secret_data(recorder, "tjxx-rasa-db") == {
        "host": "pg.tjxx.local",
        "port": "5432",
        "dbname": "rasa",
        "user": "rasa",
        "password": "senha-do-rasa-0123456789",
    }


def test_onprem_with_an_existing_server_needs_rasas_password(deploy: Deploy) -> None:
    config = {
        **example_config("onprem"),
        "assistantSpec": {
            "postgres": {"mode": "external", "external": {"secretRef": {"name": "tjxx-db"}}}
        },
        "externalPostgres": {"host": "pg.tjxx.local"},
    }
    secrets = {**ONPREM_SECRETS, "postgresPassword": TEST_SECRETS["postgresPassword"]}
    message = run_failing_program("onprem", config, secrets=secrets)
    assert "rasaPostgresPassword" in message


def test_operator_image_can_be_replaced(deploy: Deploy) -> None:
    config = {**example_config("onprem"), "operatorImage": "registro.tjxx.local/operator:0.1.0"}
    recorder = deploy("onprem", config, secrets=ONPREM_SECRETS)
    (deployment,) = recorder.kubernetes("Deployment")
    containers = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["registro.tjxx.local/operator:0.1.0"]


@pytest.mark.parametrize("stack", ["aws", "onprem"])
def test_argocd_mode_installs_the_root_application_instead(deploy: Deploy, stack: str) -> None:
    config = {
        **example_config(stack),
        "install": "argocd",
        "argocd": {
            "repoUrl": "https://git.tjxx.jus.br/plataforma/assistente.git",
            "targetRevision": "v0.1.0",
        },
    }
    config.pop("assistantSpec", None)
    recorder = deploy(stack, config, secrets=secrets_for(stack))
    (application,) = recorder.kubernetes("Application")
    source = application.inputs["spec"]["source"]
    assert source["repoURL"] == "https://git.tjxx.jus.br/plataforma/assistente.git"
    assert source["targetRevision"] == "v0.1.0"
    assert application.inputs["metadata"]["namespace"] == "argocd"
    # Argo CD installs the operator and the resource from Git; Pulumi adds only the Secrets.
    assert recorder.kubernetes("Deployment") == []
    assert recorder.kubernetes("AssistenteDigital") == []
    assert recorder.kubernetes("CustomResourceDefinition") == []
    assert "tjxx-datajud" in names(recorder.kubernetes("Secret"))
    assert names(recorder.kubernetes("Namespace")) == {"assistente-digital"}


def test_secrets_wait_for_their_namespace_and_the_resource_for_everything(deploy: Deploy) -> None:
    """Ordering the provider cannot infer: namespaces and CRDs first, the resource last."""
    recorder: Recorder = deploy("onprem", example_config("onprem"), secrets=ONPREM_SECRETS)
    order = [r.typ.rsplit(":", 1)[1] for r in recorder.resources if r.typ.startswith("kubernetes:")]
    assert order[-1] == "AssistenteDigital"
    first_dependent = min(order.index(kind) for kind in ("Secret", "Deployment", "ServiceAccount"))
    assert (
        max(order.index(kind) for kind in ("Namespace", "CustomResourceDefinition"))
        < first_dependent
    )
