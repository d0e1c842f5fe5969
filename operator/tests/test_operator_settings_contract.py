"""The custom resource is a contract, and it is kept: every environment variable and mounted file
the builders write is read by the component it is written for (the table in
builders/settings_contract.py says by which setting), and every setting a component requires in
production has a source in the custom resource."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_app.core.settings import REQUIRED_IN_PRODUCTION as APP_REQUIRED
from assistente_app.settings import Settings as AppSettings
from assistente_operator.builders import build_children
from assistente_operator.builders.settings_contract import SETTINGS_CONTRACT, SettingSource, row
from assistente_operator.models import AssistenteDigital

from .test_operator_builders import sample_cr

REPO = Path(__file__).resolve().parents[2]
ACTIONS_SETTINGS = REPO / "rasa" / "actions" / "settings.py"
RASA_READERS = (REPO / "rasa" / "endpoints.yml", REPO / "rasa" / "docker" / "rasa-entrypoint.sh")
COMPONENTS = {"api", "worker", "nlu", "actions"}


def every_option_cr() -> AssistenteDigital:
    """The sample with every optional source switched on, so conditional keys render too."""
    body = yaml.safe_load((REPO / "operator/config/samples/assistentedigital.yaml").read_text())
    body["metadata"].update(namespace="assistente-digital", uid="1")
    spec = body["spec"]
    for channel in ("whatsapp", "telegram", "voice"):
        spec["channels"][channel] = {"enabled": True, "secretRef": {"name": f"tjxx-{channel}"}}
    spec["actions"]["datajud"]["baseUrl"] = "https://datajud.example"
    # The sample uses an external PostgreSQL; this one the CloudNativePG cluster.
    spec["postgres"] = {"mode": "cloudnativepg", "rasaSecretRef": {"name": "tjxx-rasa-db"}}
    return AssistenteDigital.from_body(body)


def written_keys(cr: AssistenteDigital) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(component, key, container) for every variable, envFrom prefix and mount of every pod."""
    children = build_children(cr)
    config_maps = {o["metadata"]["name"]: o for o in children if o["kind"] == "ConfigMap"}
    for obj in children:
        if obj["kind"] != "Deployment":
            continue
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = obj["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            for env in container.get("env", []):
                yield component, env["name"], container
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    for key in config_maps[source["configMapRef"]["name"]]["data"]:
                        yield component, key, container
                else:
                    yield component, f"{source['prefix']}*", container
            for mount in container.get("volumeMounts", []):
                yield component, mount["mountPath"], container


def actions_reads() -> set[str]:
    """The variables rasa/actions/settings.py reads (``env.get("X")`` / ``env["X"]``)."""
    tree = ast.parse(ACTIONS_SETTINGS.read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def actions_required() -> set[str]:
    tree = ast.parse(ACTIONS_SETTINGS.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "REQUIRED_IN_PRODUCTION"
        ):
            return {str(elt.value) for elt in node.value.elts}  # type: ignore[attr-defined]
    raise AssertionError("rasa/actions/settings.py has no REQUIRED_IN_PRODUCTION")


def rasa_reads() -> set[str]:
    text = "\n".join(path.read_text() for path in RASA_READERS)
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))


def consumed(entry: SettingSource, container: dict[str, Any] | None) -> bool:
    key = entry.key
    if entry.reads == "app":
        fields = AppSettings.model_fields
        if key.endswith("*"):
            prefix = key.removeprefix("ASSISTENTE_").removesuffix("*").lower()
            return any(name.startswith(prefix) for name in fields)
        return key.removeprefix("ASSISTENTE_").lower() in fields
    if entry.reads == "actions":
        if key.startswith("/"):  # a mount: a variable the action server reads points into it
            return container is not None and any(
                env["name"] in actions_reads() and str(env.get("value", "")).startswith(key)
                for env in container.get("env", [])
            )
        return key in actions_reads()
    if entry.reads == "rasa":
        return key in rasa_reads()
    if entry.reads == "kubernetes":
        return container is not None and any(
            f"$({key})" in str(env.get("value", "")) for env in container.get("env", [])
        )
    return True  # process: HOME and scratch directories


@pytest.mark.parametrize("make", [sample_cr, every_option_cr], ids=["sample", "every-option"])
def test_every_key_a_builder_writes_is_read(make: Any) -> None:
    unknown, unread = set(), set()
    for component, key, container in written_keys(make()):
        entry = row(component, key)  # type: ignore[arg-type]
        if entry is None:
            unknown.add(f"{component}: {key}")
        elif not consumed(entry, container):
            unread.add(f"{component}: {key} ({entry.reads})")
    assert not unknown, f"keys with no row in builders/settings_contract.py: {sorted(unknown)}"
    assert not unread, f"keys their component does not read: {sorted(unread)}"


def test_every_row_is_still_written() -> None:
    written = {(c, k) for make in (sample_cr, every_option_cr) for c, k, _ in written_keys(make())}
    stale = {(e.component, e.key) for e in SETTINGS_CONTRACT} - written
    assert not stale, f"rows no builder writes any more: {sorted(stale)}"
    assert {e.component for e in SETTINGS_CONTRACT} == COMPONENTS


def test_what_production_requires_has_a_source_in_the_resource() -> None:
    written = {(c, k) for c, k, _ in written_keys(sample_cr())}
    for component in ("api", "worker"):
        for setting in APP_REQUIRED:
            key = f"ASSISTENTE_{setting.upper()}"
            assert (component, key) in written, f"{component} gets no {key}"
            assert row(component, key) is not None
        assert (component, "ASSISTENTE_ENVIRONMENT") in written
    for key in actions_required():
        assert ("actions", key) in written, f"actions gets no {key}"
        assert key in actions_reads()
    # The sample is a complete resource: the API and its migrations start with it.
    api = next(o for o in build_children(sample_cr()) if o["kind"] == "Deployment")
    assert api["metadata"]["name"] == "tjxx-api"
    init = api["spec"]["template"]["spec"]["initContainers"]
    assert [c["args"] for c in init] == [["migrate"]]


def test_the_contract_test_catches_an_unread_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key the app has no setting for is reported (the test above can fail)."""
    fake = SettingSource("api", "ASSISTENTE_CHANNEL_WEB_ENABLED", "app", "a renamed key")
    assert not consumed(fake, None)
    assert consumed(SettingSource("api", "ASSISTENTE_WEB_ENABLED", "app", "x"), None)
    assert not consumed(SettingSource("actions", "DATAJUD_KEY", "actions", "x"), None)
