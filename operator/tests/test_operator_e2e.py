"""End to end: the real operator process against the local control plane (kwok nodes, real
controller-manager, so Deployments get Ready pods and garbage collection deletes children)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_operator.builders import build_children
from assistente_operator.models import AssistenteDigital, AssistenteDigitalSpec

from .test_operator_builders import with_required

pytestmark = pytest.mark.cluster

OPERATOR_DIR = Path(__file__).resolve().parents[1]
SAMPLE = OPERATOR_DIR / "config/samples/assistentedigital.yaml"
INVALID_SPECS = yaml.safe_load((Path(__file__).parent / "data/invalid_specs.yaml").read_text())
GROUP_KIND = "assistentesdigitais.assistente.digital"

Poll = Callable[..., Any]


def sample(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"].update(spec)
    return body


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for item in (obj or {}).get("status", {}).get("conditions", []):
        if item["type"] == type_:
            return dict(item)
    return {}


def ready_and_current(kube: Any, name: str, namespace: str) -> dict[str, Any] | None:
    obj = kube.get(GROUP_KIND, name, namespace)
    if obj is None:
        return None
    current = obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
    return obj if current and condition(obj, "Ready").get("status") == "True" else None


def expected_children(body: dict[str, Any], uid: str) -> list[dict[str, Any]]:
    live = copy.deepcopy(body)
    live["metadata"]["uid"] = uid
    return build_children(AssistenteDigital.from_body(live))


def resource_of(obj: dict[str, Any]) -> str:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    plural = {
        "NetworkPolicy": "networkpolicies",
        "Ingress": "ingresses",
        "PodDisruptionBudget": "poddisruptionbudgets",
        "HorizontalPodAutoscaler": "horizontalpodautoscalers",
        "PrometheusRule": "prometheusrules",
        "ServiceMonitor": "servicemonitors",
        "PodMonitor": "podmonitors",
    }.get(obj["kind"], obj["kind"].lower() + "s")
    return f"{plural}.{group}" if group else plural


def test_sample_becomes_ready_with_owned_children(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    body = sample("tjxx", namespace)
    kube.apply([body])
    cr = poll(lambda: ready_and_current(kube, "tjxx", namespace), what="the sample to become Ready")
    uid = cr["metadata"]["uid"]
    for child in expected_children(body, uid):
        live = kube.get(resource_of(child), child["metadata"]["name"], namespace)
        assert live is not None, f"missing {child['kind']} {child['metadata']['name']}"
        owners = live["metadata"].get("ownerReferences", [])
        assert [o["uid"] for o in owners if o.get("controller")] == [uid], child["metadata"]["name"]
    status = cr["status"]
    assert status["phase"] == "Ready"
    assert status["apiReplicas"] == "2/2"
    for type_ in (
        "ApiReady",
        "NluReady",
        "ActionsReady",
        "WorkerReady",
        "RedisReady",
        "PostgresReady",
    ):
        assert condition(cr, type_)["status"] == "True", type_
    assert condition(cr, "Progressing")["status"] == "False"
    assert condition(cr, "Degraded")["status"] == "False"
    assert condition(cr, "MonitoringReady")["reason"] == "Applied"
    # The Event is posted after the status it reports, so it may trail it.
    poll(
        lambda: (
            '"reason": "Ready"' in kube.run("get", "events", "-n", namespace, "-o", "json").stdout
        ),
        what="the Ready Event",
    )
    # No finalizer: deletion must never depend on the operator being up.
    assert not cr["metadata"].get("finalizers")


def test_steady_state_passes_write_nothing(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    """Once converged, resync passes find nothing to change and send no writes at all."""
    kube.apply([sample("steady", namespace)])
    poll(lambda: ready_and_current(kube, "steady", namespace), what="Ready")

    def passes_and_applies() -> tuple[float, float]:
        return (
            operator.sample("assistente_operator_reconciles_total", result="success"),
            operator.sample("assistente_operator_applies_total"),
        )

    def three_passes_after(before: tuple[float, float]) -> tuple[float, float]:
        def done() -> tuple[float, float] | None:
            now = passes_and_applies()
            return now if now[0] >= before[0] + 3 else None

        result: tuple[float, float] = poll(done, what="three more reconcile passes", timeout=60)
        return result

    def quiet_window() -> bool:
        start = passes_and_applies()
        end = three_passes_after(start)
        return end[1] == start[1]

    assert passes_and_applies()[1] > 0, "creating the children must count as applies"
    # Right after Ready a few late writes are expected (e.g. the Deployment controller's revision
    # annotation); then passes must stop writing: two quiet windows in a row. A write on every
    # pass never gets one. The counter is the operator's, so another test's resource that is
    # still alive (re-asserting its children every few minutes) may break one pair; the next
    # pair is tried then.
    poll(
        lambda: quiet_window() and quiet_window(),
        what="two windows of reconcile passes without writes, in a row",
        timeout=180,
        interval=0,
    )
    assert condition(kube.get(GROUP_KIND, "steady", namespace), "Ready")["status"] == "True"


def test_server_defaults_equal_the_model_defaults(kube: Any, operator: Any, namespace: str) -> None:
    kube.apply(
        [
            {
                "apiVersion": "assistente.digital/v1alpha1",
                "kind": "AssistenteDigital",
                "metadata": {"name": "minimal", "namespace": namespace},
                "spec": with_required(),  # the least a resource says: its credentials
            }
        ]
    )
    stored = kube.get(GROUP_KIND, "minimal", namespace)
    assert stored is not None
    model = AssistenteDigitalSpec.model_validate(with_required()).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert stored["spec"] == model


def test_spec_changes_flow_to_the_children(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    body = sample("edit", namespace)
    kube.apply([body])
    poll(lambda: ready_and_current(kube, "edit", namespace), what="Ready before the edit")
    before = kube.get("deployment", "edit-api", namespace)
    nlu_before = kube.get("deployment", "edit-nlu", namespace)
    body["spec"]["nlu"]["replicas"] = 3
    body["spec"]["escalation"]["queueLimit"] = 42
    body["spec"]["channels"]["telegram"] = {"enabled": True, "secretRef": {"name": "edit-telegram"}}
    kube.apply([body])

    def followed() -> bool:
        nlu = kube.get("deployment", "edit-nlu", namespace) or {}
        settings = kube.get("configmap", "edit-settings", namespace) or {}
        return bool(
            nlu.get("spec", {}).get("replicas") == 3
            and settings.get("data", {}).get("ASSISTENTE_ESCALATION_QUEUE_LIMIT") == "42"
        )

    poll(followed, what="the children to follow the spec")
    cr = poll(lambda: ready_and_current(kube, "edit", namespace), what="Ready after the edit")
    assert cr["status"]["observedGeneration"] == 2
    after = kube.get("deployment", "edit-api", namespace)
    assert before
    assert after
    key = "assistente.digital/input-hash"
    # The API reads the settings ConfigMap, so its pods roll; Rasa's config did not change.
    assert (
        after["spec"]["template"]["metadata"]["annotations"][key]
        != before["spec"]["template"]["metadata"]["annotations"][key]
    )
    env_from = after["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"prefix": "ASSISTENTE_TELEGRAM_", "secretRef": {"name": "edit-telegram"}} in env_from
    nlu_after = kube.get("deployment", "edit-nlu", namespace)
    assert nlu_before
    assert nlu_after
    assert nlu_after["spec"]["template"] == nlu_before["spec"]["template"]


def test_deleted_or_edited_children_come_back(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    kube.apply([sample("drift", namespace)])
    poll(lambda: ready_and_current(kube, "drift", namespace), what="Ready")
    old_uid = kube.get("deployment", "drift-worker", namespace)["metadata"]["uid"]
    kube.run("delete", "deployment", "drift-worker", "-n", namespace)
    kube.run("delete", "networkpolicy", "drift-redis", "-n", namespace)
    kube.run(
        "patch",
        "configmap",
        "drift-settings",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"data": {"ASSISTENTE_RETENTION_DAYS": "9999"}}',
    )

    def restored() -> bool:
        worker = kube.get("deployment", "drift-worker", namespace)
        policy = kube.get("networkpolicy", "drift-redis", namespace)
        settings = kube.get("configmap", "drift-settings", namespace) or {}
        return bool(
            worker
            and worker["metadata"]["uid"] != old_uid
            and policy
            and settings["data"]["ASSISTENTE_RETENTION_DAYS"] == "180"
        )

    poll(restored, what="the deleted and edited children to be restored")
    poll(lambda: ready_and_current(kube, "drift", namespace), what="Ready again")


def test_operator_never_fights_the_hpa(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    kube.apply([sample("hpa", namespace)])  # the sample autoscales the API (2..20)
    poll(lambda: ready_and_current(kube, "hpa", namespace), what="Ready")
    assert kube.get("hpa", "hpa-api", namespace) is not None
    # Play the autoscaler: another field manager sets replicas.
    kube.run("scale", "deployment", "hpa-api", "-n", namespace, "--replicas=4")
    body = sample("hpa", namespace)
    body["spec"]["retention"]["conversationDays"] = 90  # make the operator reconcile
    kube.apply([body])
    poll(lambda: ready_and_current(kube, "hpa", namespace), what="reconciled after the edit")
    passes = operator.passes()
    poll(lambda: operator.passes() > passes, what="another reconcile pass", timeout=60)
    deployment = kube.get("deployment", "hpa-api", namespace)
    assert deployment["spec"]["replicas"] == 4
    shown = kube.run(
        "get", "deployment", "hpa-api", "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    managers = {m["manager"] for m in json.loads(shown.stdout)["metadata"]["managedFields"]}
    assert "assistente-operator" in managers


def test_invalid_resources_are_rejected_by_the_api_server(
    kube: Any, operator: Any, namespace: str
) -> None:
    for case in INVALID_SPECS:
        body = {
            "apiVersion": "assistente.digital/v1alpha1",
            "kind": "AssistenteDigital",
            "metadata": {"name": case["name"], "namespace": namespace},
            "spec": case["spec"],
        }
        result = kube.apply([body], check=False)
        assert result.returncode != 0, f"{case['name']} was accepted"
        assert case["message"] in result.stderr, (case["name"], result.stderr)
    too_long = {
        "apiVersion": "assistente.digital/v1alpha1",
        "kind": "AssistenteDigital",
        "metadata": {"name": "x" * 41, "namespace": namespace},
        "spec": {},
    }
    result = kube.apply([too_long], check=False)
    assert result.returncode != 0
    assert "no máximo 40 caracteres" in result.stderr


def test_transition_rules_protect_storage_and_modes(
    kube: Any, operator: Any, namespace: str
) -> None:
    body = sample("rules", namespace)
    body["spec"]["redis"]["inCluster"]["persistence"] = {"enabled": False, "size": "2Gi"}
    kube.apply([body])
    shrink = copy.deepcopy(body)
    shrink["spec"]["redis"]["inCluster"]["persistence"]["size"] = "1Gi"
    result = kube.apply([shrink], check=False)
    assert result.returncode != 0
    assert "o tamanho do armazenamento não pode diminuir" in result.stderr
    grow = copy.deepcopy(body)
    grow["spec"]["redis"]["inCluster"]["persistence"]["size"] = "3Gi"
    kube.apply([grow])
    switch = copy.deepcopy(grow)
    switch["spec"]["postgres"] = {"mode": "cloudnativepg"}
    result = kube.apply([switch], check=False)
    assert result.returncode != 0
    assert "postgres.mode não pode ser alterado" in result.stderr


def test_restarting_the_operator_rolls_no_pods(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    kube.apply([sample("restart", namespace)])
    poll(lambda: ready_and_current(kube, "restart", namespace), what="Ready")

    def snapshot() -> dict[str, tuple[int, str]]:
        items = kube.list_objects(
            "deployments,statefulsets", namespace, "app.kubernetes.io/instance=restart"
        )
        return {
            f"{i['kind']}/{i['metadata']['name']}": (
                i["metadata"]["generation"],
                i["metadata"]["resourceVersion"],
            )
            for i in items
        }

    before = snapshot()
    replica_sets = {r["metadata"]["name"] for r in kube.list_objects("replicasets", namespace)}
    operator.restart()
    poll(lambda: operator.passes() >= 2, what="the restarted operator to reconcile", timeout=60)
    after = snapshot()
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert {
        r["metadata"]["name"] for r in kube.list_objects("replicasets", namespace)
    } == replica_sets


def test_paused_resources_are_left_alone(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    body = sample("pause", namespace)
    kube.apply([body])
    poll(lambda: ready_and_current(kube, "pause", namespace), what="Ready")
    body["spec"]["paused"] = True
    kube.apply([body])
    poll(
        lambda: (
            (kube.get(GROUP_KIND, "pause", namespace) or {}).get("status", {}).get("phase")
            == "Paused"
        ),
        what="phase Paused",
    )
    kube.run("delete", "deployment", "pause-worker", "-n", namespace)
    passes = operator.passes()
    poll(lambda: operator.passes() > passes + 1, what="reconcile passes while paused", timeout=60)
    assert kube.get("deployment", "pause-worker", namespace) is None
    body["spec"]["paused"] = False
    kube.apply([body])
    poll(
        lambda: kube.get("deployment", "pause-worker", namespace),
        what="the worker back after unpausing",
    )


def test_cloudnativepg_readiness_follows_the_cluster_status(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    body = sample("pg", namespace)
    body["spec"]["postgres"] = {
        "mode": "cloudnativepg",
        "cloudnativepg": {"instances": 2},
        "rasaSecretRef": body["spec"]["postgres"]["rasaSecretRef"],
    }
    kube.apply([body])

    def waiting() -> dict[str, Any] | None:
        found = condition(kube.get(GROUP_KIND, "pg", namespace), "PostgresReady")
        return found if found.get("reason") == "WaitingForCloudNativePG" else None

    poll(waiting, what="PostgresReady=False while CloudNativePG has not reported")
    assert condition(kube.get(GROUP_KIND, "pg", namespace), "Ready")["status"] == "False"
    # Play CloudNativePG: report two ready instances on the Cluster's status.
    kube.run(
        "patch",
        "clusters.postgresql.cnpg.io",
        "pg-pg",
        "-n",
        namespace,
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        '{"status": {"readyInstances": 2, "phase": "Cluster in healthy state"}}',
    )
    cr = poll(lambda: ready_and_current(kube, "pg", namespace), what="Ready once the Cluster is")
    assert condition(cr, "PostgresReady")["reason"] == "ClusterReady"


def test_deleting_the_resource_removes_every_child(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    kube.apply([sample("gone", namespace)])
    poll(lambda: ready_and_current(kube, "gone", namespace), what="Ready")
    kube.run("delete", GROUP_KIND, "gone", "-n", namespace, "--wait=true", "--timeout=60s")
    kinds = ",".join(
        (
            "deployments,statefulsets,services,configmaps,serviceaccounts,hpa,pdb",
            "networkpolicies",
            "ingresses,servicemonitors,podmonitors,prometheusrules",
        )
    )
    poll(
        lambda: not kube.list_objects(kinds, namespace, "app.kubernetes.io/instance=gone"),
        what="garbage collection",
        timeout=120,
    )


def test_monitoring_is_skipped_with_a_condition_when_its_crds_are_missing(
    kube: Any, operator: Any, namespace: str, poll: Poll
) -> None:
    files = kube.cluster.third_party_crd_files()["prometheus-operator"]
    kube.run("delete", *[a for f in files for a in ("-f", str(f))], "--wait=true")
    try:
        kube.apply([sample("nomon", namespace)])

        def skipped() -> dict[str, Any] | None:
            cr = kube.get(GROUP_KIND, "nomon", namespace)
            found = condition(cr, "MonitoringReady")
            return cr if found.get("reason") == "PrometheusOperatorCRDsMissing" else None

        cr = poll(skipped, what="MonitoringReady=False, PrometheusOperatorCRDsMissing")
        assert "ServiceMonitor" in condition(cr, "MonitoringReady")["message"]
        poll(lambda: ready_and_current(kube, "nomon", namespace), what="Ready without monitoring")
    finally:
        kube.cluster.install_third_party_crds(["prometheus-operator"])
    poll(
        lambda: kube.get("servicemonitors.monitoring.coreos.com", "nomon-api", namespace),
        what="the ServiceMonitor once the CRD is back",
        timeout=60,
    )


def test_twenty_resources_in_twenty_namespaces(kube: Any, operator: Any, poll: Poll) -> None:
    namespaces = [f"par-{i:02d}" for i in range(20)]
    documents: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces
    ]
    for index, ns in enumerate(namespaces):
        body = sample(f"court{index:02d}", ns)
        for component in ("api", "nlu", "actions", "worker"):
            body["spec"][component] = {"replicas": 1}
        body["spec"]["redis"]["inCluster"].update(replicas=1, sentinelQuorum=1)
        documents.append(body)
    kube.apply(documents)
    try:
        for index, ns in enumerate(namespaces):
            cr = poll(
                lambda ns=ns, index=index: ready_and_current(kube, f"court{index:02d}", ns),
                what=f"court{index:02d} Ready",
                timeout=180,
            )
            assert cr["status"]["apiReplicas"] == "1/1"
            deployments = kube.list_objects("deployments", ns)
            assert {d["metadata"]["name"] for d in deployments} == {
                f"court{index:02d}-{c}" for c in ("api", "nlu", "actions", "worker")
            }
    finally:
        kube.run("delete", "namespace", *namespaces, "--wait=false", check=False)
