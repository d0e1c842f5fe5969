"""In-cluster Redis: one master plus replicas in a StatefulSet, a Sentinel next to each.

Start-up never trusts a pod's own memory of who the master is: each Redis and each Sentinel
first asks the running Sentinels for the current master, and only when none answers (first
start, or every pod down at once) does pod 0 bootstrap as master.
"""

from __future__ import annotations

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.builders.workloads import (
    REDIS_PASSWORD_KEY,
    REDIS_SENTINEL_MASTER,
    pdb,
    secret_env,
    security_secret,
)
from assistente_operator.models import AssistenteDigital, InClusterRedis, StoreMode

COMPONENT = "redis"
REDIS_UID = 999  # the redis user of the official images
REDIS_EXPORTER_PORT = 9121

DISCOVER_MASTER = """\
set -eu
HEADLESS="${STS_NAME}-headless.${POD_NAMESPACE}.svc"
SELF="$(hostname).${HEADLESS}"
MASTER=""
i=0
while [ "$i" -lt "$REPLICAS" ]; do
  peer="${STS_NAME}-${i}.${HEADLESS}"
  if [ "$peer" != "$SELF" ]; then
    answer=$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h "$peer" -p 26379 --raw \\
      SENTINEL get-master-addr-by-name "$MASTER_NAME" \\
      2>/dev/null | head -n 1 || true)
    if [ -n "$answer" ]; then MASTER="$answer"; break; fi
  fi
  i=$((i + 1))
done
if [ -z "$MASTER" ]; then MASTER="${STS_NAME}-0.${HEADLESS}"; fi
echo "master: $MASTER (self: $SELF)"
"""

REDIS_START = (
    "#!/bin/sh\n"
    + DISCOVER_MASTER
    + """\
CONF=/run/redis/redis.conf
{
  echo "bind 0.0.0.0"
  echo "protected-mode no"
  echo "port 6379"
  echo "dir /data"
  echo "appendonly ${APPENDONLY}"
  echo "replica-announce-ip ${SELF}"
  echo "requirepass ${REDIS_PASSWORD}"
  echo "masterauth ${REDIS_PASSWORD}"
} > "$CONF"
chmod 600 "$CONF"
if [ "$MASTER" != "$SELF" ]; then echo "replicaof ${MASTER} 6379" >> "$CONF"; fi
exec redis-server "$CONF"
"""
)

SENTINEL_START = (
    "#!/bin/sh\n"
    + DISCOVER_MASTER
    + """\
CONF=/run/redis/sentinel.conf
{
  echo "port 26379"
  echo "sentinel resolve-hostnames yes"
  echo "sentinel announce-hostnames yes"
  echo "sentinel announce-ip ${SELF}"
  echo "sentinel monitor ${MASTER_NAME} ${MASTER} 6379 ${QUORUM}"
  echo "sentinel down-after-milliseconds ${MASTER_NAME} 5000"
  echo "sentinel failover-timeout ${MASTER_NAME} 60000"
  echo "sentinel parallel-syncs ${MASTER_NAME} 1"
  echo "sentinel auth-pass ${MASTER_NAME} ${REDIS_PASSWORD}"
  echo "requirepass ${REDIS_PASSWORD}"
  echo "sentinel sentinel-pass ${REDIS_PASSWORD}"
} > "$CONF"
chmod 600 "$CONF"
exec redis-server "$CONF" --sentinel
"""
)


def statefulset_name(cr: AssistenteDigital) -> str:
    return common.child_name(cr, "redis")


def statefulset_ref(cr: AssistenteDigital) -> common.ChildRef | None:
    """The StatefulSet that runs Redis; None when Redis is external."""
    if cr.spec.redis.mode != StoreMode.IN_CLUSTER:
        return None
    return common.ChildRef("apps/v1", "StatefulSet", statefulset_name(cr))


def scripts_configmap(cr: AssistenteDigital) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": common.metadata(cr, common.child_name(cr, "redis-scripts"), COMPONENT),
        "data": {"redis-start.sh": REDIS_START, "sentinel-start.sh": SENTINEL_START},
    }


def services(cr: AssistenteDigital) -> list[Manifest]:
    selector = common.selector_labels(cr, COMPONENT)
    ports = [
        {"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"},
        {"name": "sentinel", "port": 26379, "targetPort": "sentinel", "protocol": "TCP"},
    ]
    headless: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(cr, common.child_name(cr, "redis-headless"), COMPONENT),
        "spec": {
            "clusterIP": "None",
            # Peers must resolve each other before they are Ready, to find the master.
            "publishNotReadyAddresses": True,
            "selector": selector,
            "ports": ports,
        },
    }
    client: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(cr, common.child_name(cr, "redis"), COMPONENT),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": ports},
    }
    return [headless, client]


def _exporter_container(cr: AssistenteDigital, spec: InClusterRedis) -> Manifest:
    """redis_exporter beside each Redis: the redis_* series the alert rules read (up, role,
    replication link), scraped by the assistant's Redis PodMonitor."""
    return {
        "name": "exporter",
        "image": spec.exporter_image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "-redis.addr=redis://127.0.0.1:6379",
            f"-web.listen-address=:{REDIS_EXPORTER_PORT}",
            "-redis-only-metrics",
        ],
        # Redis requires the password; redis_exporter reads it from this variable (never a flag,
        # which would show in the process list).
        "env": [secret_env("REDIS_PASSWORD", security_secret(cr), REDIS_PASSWORD_KEY)],
        "ports": [{"name": "metrics", "containerPort": REDIS_EXPORTER_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": common.container_security_context(),
        # It answers while the process lives, also when Redis does not (then redis_up is 0).
        **common.http_probes("metrics", ready_path="/", live_path="/", startup_seconds=30),
    }


def _exec_probe(port: int, period: int) -> Manifest:
    return {
        "exec": {"command": ["redis-cli", "-p", str(port), "ping"]},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def statefulset(cr: AssistenteDigital) -> Manifest:
    spec = cr.spec.redis.in_cluster
    name = statefulset_name(cr)
    scripts = scripts_configmap(cr)
    env = [
        {"name": "STS_NAME", "value": name},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "REPLICAS", "value": str(spec.replicas)},
        {"name": "MASTER_NAME", "value": REDIS_SENTINEL_MASTER},
        {"name": "QUORUM", "value": str(spec.sentinel_quorum)},
        {"name": "APPENDONLY", "value": "yes" if spec.persistence.enabled else "no"},
        # Redis, its replicas and the Sentinels all require it; redis-cli (the probes, the
        # master discovery) reads it from REDISCLI_AUTH.
        secret_env("REDIS_PASSWORD", security_secret(cr), REDIS_PASSWORD_KEY),
        secret_env("REDISCLI_AUTH", security_secret(cr), REDIS_PASSWORD_KEY),
    ]
    mounts: list[Manifest] = [
        {"name": "data", "mountPath": "/data"},
        {"name": "run", "mountPath": "/run/redis"},
        {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
    ]
    redis_container: Manifest = {
        "name": "redis",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "/scripts/redis-start.sh"],
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "env": env,
        "resources": common.resources(spec.resources),
        "securityContext": common.container_security_context(),
        "volumeMounts": mounts,
        "startupProbe": {**_exec_probe(6379, 5), "failureThreshold": 60},
        "readinessProbe": _exec_probe(6379, 10),
        "livenessProbe": _exec_probe(6379, 20),
    }
    sentinel_container: Manifest = {
        "name": "sentinel",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "/scripts/sentinel-start.sh"],
        "ports": [{"name": "sentinel", "containerPort": 26379, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "200m", "memory": "128Mi"},
        },
        "securityContext": common.container_security_context(),
        "volumeMounts": [mount for mount in mounts if mount["name"] != "data"],
        "startupProbe": {**_exec_probe(26379, 5), "failureThreshold": 60},
        "readinessProbe": _exec_probe(26379, 10),
        "livenessProbe": _exec_probe(26379, 20),
    }
    volumes: list[Manifest] = [
        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
        {
            "name": "scripts",
            "configMap": {"name": scripts["metadata"]["name"], "defaultMode": 0o555},
        },
    ]
    selector = common.selector_labels(cr, COMPONENT)
    sts_spec: Manifest = {
        "serviceName": common.child_name(cr, "redis-headless"),
        "replicas": spec.replicas,
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate"},
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {
                "labels": common.pod_labels(cr, COMPONENT),
                "annotations": {common.INPUT_HASH_ANNOTATION: common.input_hash(scripts["data"])},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": common.pod_security_context(REDIS_UID),
                "terminationGracePeriodSeconds": 30,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector},
                    }
                ],
                "containers": [redis_container, sentinel_container, _exporter_container(cr, spec)],
                "volumes": volumes,
                **common.placement(cr.spec.placement.data),
            },
        },
    }
    persistence = spec.persistence
    if persistence.enabled:
        claim_spec: Manifest = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": persistence.size}},
        }
        if persistence.storage_class_name:
            claim_spec["storageClassName"] = persistence.storage_class_name
        sts_spec["volumeClaimTemplates"] = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": claim_spec,
            }
        ]
        # With deletionPolicy Retain the volumes outlive the StatefulSet (and the resource);
        # with Delete the StatefulSet owns them, so garbage collection takes them too.
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete" if common.deleted_with_resource(cr) else "Retain",
            "whenScaled": "Retain",
        }
    else:
        volumes.insert(0, {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}})
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": common.metadata(cr, name, COMPONENT),
        "spec": sts_spec,
    }


def build(cr: AssistenteDigital) -> list[Manifest]:
    if cr.spec.redis.mode != StoreMode.IN_CLUSTER:
        return []
    objects = [scripts_configmap(cr), *services(cr), statefulset(cr)]
    budget = pdb(cr, COMPONENT, cr.spec.redis.in_cluster.replicas)
    if budget is not None:
        objects.append(budget)
    return objects
