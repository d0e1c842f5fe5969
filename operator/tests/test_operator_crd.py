"""The CRD is generated from the models; these tests keep the two (and the file in git) in step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_operator.crd import build_crd, openapi_schema
from assistente_operator.models import AssistenteDigitalSpec, CRDModel
from pydantic import ValidationError

from .test_operator_builders import with_required

OPERATOR_DIR = Path(__file__).resolve().parents[1]
CRD_FILE = OPERATOR_DIR / "config/crd/bases/assistente.digital_assistentesdigitais.yaml"
INVALID_SPECS = yaml.safe_load((Path(__file__).parent / "data/invalid_specs.yaml").read_text())


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found += walk(value, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += walk(node[key], f"{path}[{key}]")
    return found


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it, for the parts this CRD uses."""
    if schema.get("type") == "object" and isinstance(value, dict):
        result = dict(value)
        for name, sub in schema.get("properties", {}).items():
            if name not in result and "default" in sub:
                result[name] = sub["default"]
            if name in result:
                result[name] = apply_defaults(sub, result[name])
        return result
    if schema.get("type") == "array" and isinstance(value, list):
        return [apply_defaults(schema.get("items", {}), item) for item in value]
    return value


def test_committed_crd_matches_the_models() -> None:
    committed = yaml.safe_load(CRD_FILE.read_text())
    assert committed == build_crd(), (
        "the CRD in git is stale: run `assistente-operator crd > "
        "operator/config/crd/bases/assistente.digital_assistentesdigitais.yaml`"
    )


def test_schema_is_structural() -> None:
    for path, node in walk(openapi_schema()):
        assert not {"$ref", "anyOf", "title"} & set(node), path
        if path.startswith(".metadata"):
            continue
        assert "type" in node or "x-kubernetes-int-or-string" in node, f"{path} has no type"
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path


def test_every_cel_rule_has_a_message_and_every_list_is_bounded() -> None:
    rules = 0
    for path, node in walk(openapi_schema()):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"], path
            rules += 1
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: CEL cost estimation needs maxItems"
    assert rules >= 10


def test_schema_defaults_equal_model_defaults() -> None:
    schema = openapi_schema()["properties"]["spec"]
    defaulted = apply_defaults(schema, with_required())
    model = AssistenteDigitalSpec.model_validate(with_required()).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert defaulted == model


def test_models_round_trip_a_defaulted_object() -> None:
    schema = openapi_schema()["properties"]["spec"]
    defaulted = apply_defaults(
        schema,
        with_required(
            {"postgres": {"mode": "external", "external": {"secretRef": {"name": "db"}}}}
        ),
    )
    parsed = AssistenteDigitalSpec.model_validate(defaulted)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == defaulted


@pytest.mark.parametrize("case", INVALID_SPECS, ids=[c["name"] for c in INVALID_SPECS])
def test_models_reject_what_the_crd_rejects(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as error:
        AssistenteDigitalSpec.model_validate(case["spec"])
    assert case["message"] in str(error.value)


def test_each_cross_field_rule_has_an_invalid_example() -> None:
    """A CEL rule without an example in invalid_specs.yaml could silently drift from Python."""
    messages = {case["message"] for case in INVALID_SPECS}
    rule_messages: set[str] = set()
    pending: list[type[CRDModel]] = [AssistenteDigitalSpec]
    seen: set[type[CRDModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        rule_messages |= {r["message"] for r in model.cel_rules if "oldSelf" not in r["rule"]}
        for field in model.model_fields.values():
            for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, CRDModel):
                    pending.append(candidate)
    for message in rule_messages:
        assert any(example in message for example in messages), f"no invalid example for: {message}"


def test_printer_columns_and_status_subresource() -> None:
    version = build_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[:3] == ["Ready", "Phase", "API"]
    assert "Age" in names
