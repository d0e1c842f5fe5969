"""PostgreSQL through CloudNativePG: a ``Cluster`` (primary + read replicas) and its backups.

CloudNativePG runs the database; this operator only declares what it wants. The Cluster's
``-rw``/``-ro`` Services and ``-app`` Secret are created by CloudNativePG.
"""

from __future__ import annotations

from assistente_operator.builders import common
from assistente_operator.builders.common import Manifest
from assistente_operator.models import AssistenteDigital, PostgresMode

COMPONENT = "postgres"
CNPG_API_VERSION = "postgresql.cnpg.io/v1"
DATABASE = "assistente"


def cluster_name(cr: AssistenteDigital) -> str:
    return common.child_name(cr, "pg")


def cluster_ref(cr: AssistenteDigital) -> common.ChildRef | None:
    """The CloudNativePG Cluster; None when PostgreSQL is external."""
    if cr.spec.postgres.mode != PostgresMode.CLOUDNATIVEPG:
        return None
    return common.ChildRef(CNPG_API_VERSION, "Cluster", cluster_name(cr))


RASA_ROLE = "rasa"


def rasa_role(cr: AssistenteDigital) -> Manifest:
    secret = cr.spec.postgres.rasa_secret_ref
    assert secret is not None  # required by the CRD (and the model)
    return {
        "name": RASA_ROLE,
        "ensure": "present",
        "login": True,
        "createdb": True,
        "inherit": False,
        "connectionLimit": 50,
        "passwordSecret": {"name": secret.name},
    }


def cluster(cr: AssistenteDigital) -> Manifest:
    spec = cr.spec.postgres.cloudnativepg
    storage: Manifest = {"size": spec.storage.size}
    if spec.storage.storage_class_name:
        storage["storageClass"] = spec.storage.storage_class_name
    cluster_spec: Manifest = {
        "instances": spec.instances,
        "primaryUpdateStrategy": "unsupervised",
        "primaryUpdateMethod": "switchover",
        "bootstrap": {"initdb": {"database": DATABASE, "owner": DATABASE}},
        "storage": storage,
        # A single-instance cluster's primary PDB blocks every node drain; only protect HA setups.
        "enablePDB": spec.instances > 1,
        "inheritedMetadata": {"labels": common.pod_labels(cr, COMPONENT)},
        # Rasa's own role (it creates its own database): Rasa cannot read the app's tables.
        "managed": {"roles": [rasa_role(cr)]},
    }
    if spec.image_name:
        cluster_spec["imageName"] = spec.image_name
    if data_nodes := common.placement(cr.spec.placement.data):
        cluster_spec["affinity"] = data_nodes
    backup = spec.backup
    if backup.enabled and backup.destination_path and backup.credentials_secret_ref:
        secret = backup.credentials_secret_ref.name
        cluster_spec["backup"] = {
            "retentionPolicy": backup.retention_policy,
            "barmanObjectStore": {
                "destinationPath": backup.destination_path,
                "s3Credentials": {
                    "accessKeyId": {"name": secret, "key": "ACCESS_KEY_ID"},
                    "secretAccessKey": {"name": secret, "key": "ACCESS_SECRET_KEY"},
                },
                "wal": {"compression": "gzip"},
            },
        }
    return {
        "apiVersion": CNPG_API_VERSION,
        "kind": "Cluster",
        # Without an owner reference (deletionPolicy Retain) the database outlives the resource.
        "metadata": common.metadata(
            cr, cluster_name(cr), COMPONENT, owned=common.deleted_with_resource(cr)
        ),
        "spec": cluster_spec,
    }


def scheduled_backup(cr: AssistenteDigital) -> Manifest | None:
    backup = cr.spec.postgres.cloudnativepg.backup
    if not backup.enabled:
        return None
    return {
        "apiVersion": CNPG_API_VERSION,
        "kind": "ScheduledBackup",
        "metadata": common.metadata(cr, common.child_name(cr, "pg-daily"), COMPONENT),
        "spec": {
            "schedule": backup.schedule,
            "backupOwnerReference": "self",
            "cluster": {"name": cluster_name(cr)},
        },
    }


def build(cr: AssistenteDigital) -> list[Manifest]:
    if cr.spec.postgres.mode != PostgresMode.CLOUDNATIVEPG:
        return []
    objects = [cluster(cr)]
    backup = scheduled_backup(cr)
    if backup is not None:
        objects.append(backup)
    return objects
