"""Pure builders: golden output for the sample CR and the properties every child must have."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_operator.builders import build_children, plan
from assistente_operator.builders.common import INPUT_HASH_ANNOTATION
from assistente_operator.models import AssistenteDigital

OPERATOR_DIR = Path(__file__).resolve().parents[1]
SAMPLE = OPERATOR_DIR / "config/samples/assistentedigital.yaml"
GOLDEN = Path(__file__).parent / "golden/sample-children.yaml"
UID = "00000000-0000-4000-8000-000000000001"


# What every resource must name (the CRD requires them): the security Secret and Rasa's user.
REQUIRED_SPEC: dict[str, Any] = {
    "security": {"secretRef": {"name": "tjxx-security"}},
    "postgres": {"rasaSecretRef": {"name": "tjxx-rasa-db"}},
}


def with_required(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """``spec`` plus what the CRD requires (unless ``spec`` says otherwise)."""
    merged = {key: dict(value) for key, value in REQUIRED_SPEC.items()}
    for key, value in (spec or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def make_cr(
    spec: dict[str, Any] | None = None, *, name: str = "tjxx", uid: str | None = UID
) -> AssistenteDigital:
    meta: dict[str, Any] = {"name": name, "namespace": "tribunal"}
    if uid:
        meta["uid"] = uid
    return AssistenteDigital.from_body({"metadata": meta, "spec": with_required(spec)})


def sample_cr() -> AssistenteDigital:
    body = yaml.safe_load(SAMPLE.read_text())
    body["metadata"].update(namespace="assistente-digital", uid=UID)
    return AssistenteDigital.from_body(body)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_templates(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    }


def test_sample_matches_golden_file() -> None:
    rendered = yaml.safe_dump_all(build_children(sample_cr()), sort_keys=False, allow_unicode=True)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(rendered)
    assert GOLDEN.exists(), "run with UPDATE_GOLDEN=1 to create the golden file"
    assert rendered == GOLDEN.read_text(), (
        "children changed: review, then UPDATE_GOLDEN=1 pytest ..."
    )


def test_every_child_is_owned_labelled_and_namespaced() -> None:
    for obj in build_children(sample_cr()):
        meta = obj["metadata"]
        assert meta["namespace"] == "assistente-digital"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "assistente-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == "tjxx"
        [owner] = meta["ownerReferences"]
        assert owner == {
            "apiVersion": "assistente.digital/v1alpha1",
            "kind": "AssistenteDigital",
            "name": "tjxx",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def test_rendering_without_uid_has_no_owner_references() -> None:
    for obj in build_children(make_cr(uid=None)):
        assert "ownerReferences" not in obj["metadata"]


def test_pods_are_hardened() -> None:
    objects = build_children(make_cr())
    templates = pod_templates(objects)
    assert set(templates) == {"tjxx-api", "tjxx-worker", "tjxx-nlu", "tjxx-actions", "tjxx-redis"}
    for name, template in templates.items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert set(container["resources"]) == {"requests", "limits"}, name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{name}/{container['name']} lacks {probe}"
        assert INPUT_HASH_ANNOTATION in template["metadata"]["annotations"], name


def test_child_names_fit_kubernetes_limits_for_the_longest_allowed_name() -> None:
    name = "a" * 40
    for obj in build_children(make_cr(name=name)):
        assert len(obj["metadata"]["name"]) <= 63 - len("-2"), obj["metadata"]["name"]
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


def test_autoscaled_deployment_leaves_replicas_to_the_hpa() -> None:
    objects = build_children(
        make_cr({"api": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}}})
    )
    deployment = by_kind(objects, "Deployment")["tjxx-api"]
    assert "replicas" not in deployment["spec"]
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["tjxx-api"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tjxx-api"
    # Components without autoscaling keep a fixed count and get no HPA.
    assert by_kind(objects, "Deployment")["tjxx-nlu"]["spec"]["replicas"] == 2
    assert "tjxx-nlu" not in by_kind(objects, "HorizontalPodAutoscaler")


@pytest.mark.parametrize(("replicas", "expect_pdb"), [(0, False), (1, False), (2, True), (5, True)])
def test_pdbs_never_block_a_drain(replicas: int, expect_pdb: bool) -> None:
    objects = build_children(make_cr({"worker": {"replicas": replicas}}))
    pdbs = by_kind(objects, "PodDisruptionBudget")
    assert ("tjxx-worker" in pdbs) is expect_pdb
    for pdb in pdbs.values():
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert "minAvailable" not in pdb["spec"]


def test_input_hash_changes_only_with_the_config_a_pod_reads() -> None:
    def hashes(spec: dict[str, Any]) -> dict[str, str]:
        templates = pod_templates(build_children(make_cr(spec)))
        return {
            name: t["metadata"]["annotations"][INPUT_HASH_ANNOTATION]
            for name, t in templates.items()
        }

    base = hashes({})
    assert hashes({}) == base  # deterministic
    assert hashes({"api": {"replicas": 7}}) == base  # scaling is not configuration
    queue = hashes({"escalation": {"queueLimit": 10}})
    assert queue["tjxx-api"] != base["tjxx-api"]
    assert queue["tjxx-worker"] != base["tjxx-worker"]
    assert queue["tjxx-nlu"] == base["tjxx-nlu"]
    assert queue["tjxx-actions"] == base["tjxx-actions"]
    agents = hashes({"agents": {"technicalSupport": {"escalationThreshold": 80}}})
    assert agents["tjxx-actions"] != base["tjxx-actions"]
    assert agents["tjxx-api"] == base["tjxx-api"]


def test_cloudnativepg_cluster_and_backups() -> None:
    spec = {
        "postgres": {
            "mode": "cloudnativepg",
            "cloudnativepg": {
                "instances": 3,
                "storage": {"size": "20Gi", "storageClassName": "fast"},
                "backup": {
                    "enabled": True,
                    "destinationPath": "s3://backups/tjxx",
                    "credentialsSecretRef": {"name": "s3"},
                },
            },
        }
    }
    objects = build_children(make_cr(spec))
    cluster = by_kind(objects, "Cluster")["tjxx-pg"]
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["storage"] == {"size": "20Gi", "storageClass": "fast"}
    assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"] == "s3://backups/tjxx"
    assert by_kind(objects, "ScheduledBackup")["tjxx-pg-daily"]["spec"]["cluster"] == {
        "name": "tjxx-pg"
    }
    api = by_kind(objects, "Deployment")["tjxx-api"]["spec"]["template"]["spec"]["containers"][0]
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in api["env"] if "valueFrom" in e}
    assert secrets == {"tjxx-pg-app", "tjxx-security", "tjxx-rasa-db"}


def test_components_trust_each_other_only_with_credentials() -> None:
    """Rasa has its own database user, its HTTP API a token, Redis a password, and the app
    reaches Rasa's tracker (for LGPD erasure) with Rasa's credentials, not its own."""
    objects = build_children(make_cr({"postgres": {"mode": "cloudnativepg"}}))
    cluster = by_kind(objects, "Cluster")["tjxx-pg"]
    assert cluster["spec"]["managed"]["roles"] == [
        {
            "name": "rasa",
            "ensure": "present",
            "login": True,
            "createdb": True,
            "inherit": False,
            "connectionLimit": 50,
            "passwordSecret": {"name": "tjxx-rasa-db"},
        }
    ]
    pods = pod_templates(objects)

    def env_of(name: str, container: int = 0) -> dict[str, Any]:
        spec = pods[name]["spec"]["containers"][container]
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in spec["env"]}

    def ref(secret: str, key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": secret, "key": key}}

    nlu = env_of("tjxx-nlu")
    assert nlu["RASA_AUTH_TOKEN"] == ref("tjxx-security", "rasa-token")
    assert nlu["RASA_TRACKER_DB_USER"] == ref("tjxx-rasa-db", "username")
    assert nlu["RASA_TRACKER_DB_NAME"] == "rasa"
    assert nlu["RASA_LOCK_REDIS_PASSWORD"] == ref("tjxx-security", "redis-password")
    assert "tjxx-pg-app" not in str(nlu)  # never the app's user
    api = env_of("tjxx-api")
    assert api["ASSISTENTE_REDIS_PASSWORD"] == ref("tjxx-security", "redis-password")
    assert api["ASSISTENTE_LGPD_AUDIT_KEY"] == ref("tjxx-security", "lgpd-audit-key")
    assert api["ASSISTENTE_RASA_TRACKER_DATABASE_URL"].endswith("@tjxx-pg-rw:5432/rasa")
    for container in (0, 1):  # Redis and its Sentinel
        redis = env_of("tjxx-redis", container)
        assert redis["REDISCLI_AUTH"] == ref("tjxx-security", "redis-password")
    scripts = by_kind(objects, "ConfigMap")["tjxx-redis-scripts"]["data"]
    assert "requirepass ${REDIS_PASSWORD}" in scripts["redis-start.sh"]
    assert "masterauth ${REDIS_PASSWORD}" in scripts["redis-start.sh"]
    assert "sentinel auth-pass" in scripts["sentinel-start.sh"]


def test_the_resource_must_name_its_credentials() -> None:
    for missing, message in (
        ("security", "spec.security.secretRef é obrigatório"),
        ("postgres", "spec.postgres.rasaSecretRef é obrigatório"),
    ):
        spec = with_required()
        del spec[missing]
        with pytest.raises(ValueError, match=message):
            AssistenteDigital.from_body({"metadata": {"name": "x"}, "spec": spec})


def test_single_instance_cloudnativepg_disables_its_pdb() -> None:
    objects = build_children(make_cr({"postgres": {"cloudnativepg": {"instances": 1}}}))
    assert by_kind(objects, "Cluster")["tjxx-pg"]["spec"]["enablePDB"] is False


def test_external_stores_render_no_statefulset_or_cluster() -> None:
    spec = {
        "redis": {"mode": "external", "external": {"secretRef": {"name": "redis"}}},
        "postgres": {"mode": "external", "external": {"secretRef": {"name": "pg"}}},
    }
    objects = build_children(make_cr(spec))
    kinds = {o["kind"] for o in objects}
    assert "StatefulSet" not in kinds
    assert "Cluster" not in kinds
    api = by_kind(objects, "Deployment")["tjxx-api"]["spec"]["template"]["spec"]["containers"][0]
    refs = {
        (e["name"], e["valueFrom"]["secretKeyRef"]["name"]) for e in api["env"] if "valueFrom" in e
    }
    assert ("ASSISTENTE_REDIS_URL", "redis") in refs
    assert ("ASSISTENTE_DATABASE_READ_URL", "pg") in refs


def test_only_enabled_channels_mount_their_secrets() -> None:
    spec = {
        "channels": {
            "whatsapp": {"enabled": True, "secretRef": {"name": "wa"}},
            "telegram": {"enabled": False, "secretRef": {"name": "telegram"}},
        }
    }
    objects = build_children(make_cr(spec))
    api = by_kind(objects, "Deployment")["tjxx-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["envFrom"][1:] == [{"prefix": "ASSISTENTE_WHATSAPP_", "secretRef": {"name": "wa"}}]
    settings = by_kind(objects, "ConfigMap")["tjxx-settings"]["data"]
    assert settings["ASSISTENTE_TELEGRAM_ENABLED"] == "false"


def test_the_console_sign_in_settings_reach_the_api() -> None:
    """spec.oidc also tells the API the console's public client and which realm roles make
    teams and supervisors."""
    issuer = "https://sso.tjxx.jus.br/realms/pdpj"
    oidc = {"issuer": issuer, "audience": "assistente-api", "jwksUrl": f"{issuer}/certs"}
    spec = {"oidc": {**oidc, "teamRolePrefix": "fila-"}}
    settings = by_kind(build_children(make_cr(spec)), "ConfigMap")["tjxx-settings"]["data"]
    assert settings["ASSISTENTE_OIDC_CLIENT_ID"] == "assistente-console"
    assert settings["ASSISTENTE_OIDC_TEAM_ROLE_PREFIX"] == "fila-"
    assert settings["ASSISTENTE_OIDC_SUPERVISOR_ROLE"] == "supervisor"


def test_placement_puts_application_and_data_pods_on_their_node_pools() -> None:
    toleration = {"key": "assistente.digital/pool", "value": "data", "effect": "NoSchedule"}
    data_pool = {"nodeSelector": {"assistente.digital/pool": "data"}, "tolerations": [toleration]}
    spec = {
        "postgres": {"mode": "cloudnativepg"},
        "placement": {
            "application": {"nodeSelector": {"assistente.digital/pool": "app"}},
            "data": data_pool,
        },
    }
    objects = build_children(make_cr(spec))
    expected_tolerations = [{**toleration, "operator": "Equal"}]
    for name, template in pod_templates(objects).items():
        pod = template["spec"]
        if name == "tjxx-redis":
            assert pod["nodeSelector"] == {"assistente.digital/pool": "data"}
            assert pod["tolerations"] == expected_tolerations
        else:
            assert pod["nodeSelector"] == {"assistente.digital/pool": "app"}, name
            assert "tolerations" not in pod, name
    affinity = by_kind(objects, "Cluster")["tjxx-pg"]["spec"]["affinity"]
    assert affinity == {
        "nodeSelector": {"assistente.digital/pool": "data"},
        "tolerations": expected_tolerations,
    }
    # Without placement nothing is pinned (the sample's golden children stay as they are).
    for template in pod_templates(build_children(make_cr())).values():
        assert "nodeSelector" not in template["spec"]
        assert "tolerations" not in template["spec"]


def test_redis_persistence_switch() -> None:
    with_pvc = by_kind(build_children(make_cr()), "StatefulSet")["tjxx-redis"]["spec"]
    assert with_pvc["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    spec = {"redis": {"inCluster": {"persistence": {"enabled": False}}}}
    without = by_kind(build_children(make_cr(spec)), "StatefulSet")["tjxx-redis"]["spec"]
    assert "volumeClaimTemplates" not in without
    assert {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}} in without["template"]["spec"][
        "volumes"
    ]


def test_ingress_and_network_policies() -> None:
    spec = {
        "ingress": {
            "enabled": True,
            "host": "a.jus.br",
            "className": "nginx",
            "tlsSecretName": "tls",
            "trustedProxies": ["10.0.0.0/8"],
        }
    }
    objects = build_children(make_cr(spec))
    ingress = by_kind(objects, "Ingress")["tjxx-api"]
    assert ingress["spec"]["tls"] == [{"hosts": ["a.jus.br"], "secretName": "tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # /metrics, /docs, /openapi.json and the health endpoints are not published.
    paths = {(p["path"], p["pathType"]) for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {("/", "Exact"), ("/static", "Prefix"), ("/api", "Prefix")} | {
        ("/atendimento", "Prefix")
    }
    policies = by_kind(objects, "NetworkPolicy")
    assert set(policies) == {
        "tjxx-api",
        "tjxx-worker",
        "tjxx-nlu",
        "tjxx-actions",
        "tjxx-redis",
        "tjxx-postgres",
    }
    # Every component but PostgreSQL (whose instance manager talks to the API server) is
    # closed for egress too; PostgreSQL accepts only what uses it and CloudNativePG.
    for name, policy in policies.items():
        expected = ["Ingress"] if name == "tjxx-postgres" else ["Ingress", "Egress"]
        assert policy["spec"]["policyTypes"] == expected, name
    postgres_from = policies["tjxx-postgres"]["spec"]["ingress"][0]["from"]
    assert [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in postgres_from
    ] == [
        "api",
        "worker",
        "nlu",
        "postgres",
    ]
    actions_out = policies["tjxx-actions"]["spec"]["egress"]
    assert {p["port"] for rule in actions_out for p in rule["ports"]} == {53, 443}
    actions_from = policies["tjxx-actions"]["spec"]["ingress"][0]["from"]
    assert actions_from == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "assistente-digital",
                    "app.kubernetes.io/instance": "tjxx",
                    "app.kubernetes.io/component": "nlu",
                }
            }
        }
    ]


def test_monitoring_objects_are_skipped_when_their_crds_are_not_served() -> None:
    cr = make_cr({"monitoring": {"labels": {"release": "kps"}}})
    everything = plan(cr)
    assert {o["kind"] for o in everything.objects} >= {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    }
    assert everything.skipped == []
    bare = plan(cr, served=frozenset())
    assert {o["kind"] for o in bare.skipped} == {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Cluster",
    }
    # The dashboard is a ConfigMap: always possible.
    assert "tjxx-dashboard" in by_kind(bare.objects, "ConfigMap")
    monitor = by_kind(everything.objects, "ServiceMonitor")["tjxx-api"]
    assert monitor["metadata"]["labels"]["release"] == "kps"


def test_monitoring_can_be_switched_off() -> None:
    objects = build_children(make_cr({"monitoring": {"enabled": False}}))
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & {o["kind"] for o in objects}
    assert "tjxx-dashboard" not in by_kind(objects, "ConfigMap")


def stores_spec(policy: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "postgres": {"mode": "cloudnativepg"},
        "redis": {"inCluster": {"persistence": {"enabled": True}}},
    }
    if policy is not None:
        spec["deletionPolicy"] = policy
    return spec


@pytest.mark.parametrize("policy", [None, "Retain"])
def test_retain_keeps_the_database_and_redis_volumes_out_of_garbage_collection(
    policy: str | None,
) -> None:
    objects = build_children(make_cr(stores_spec(policy)))
    assert "ownerReferences" not in by_kind(objects, "Cluster")["tjxx-pg"]["metadata"]
    redis = by_kind(objects, "StatefulSet")["tjxx-redis"]
    assert redis["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    others = [o for o in objects if o["kind"] != "Cluster"]
    assert all(o["metadata"]["ownerReferences"] for o in others)


def test_delete_lets_the_database_and_redis_volumes_go_with_the_resource() -> None:
    objects = build_children(make_cr(stores_spec("Delete")))
    assert by_kind(objects, "Cluster")["tjxx-pg"]["metadata"]["ownerReferences"][0]["uid"] == UID
    redis = by_kind(objects, "StatefulSet")["tjxx-redis"]
    assert redis["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
