"""Generates the AssistenteDigital CustomResourceDefinition from the pydantic models.

pydantic's JSON schema is close to a Kubernetes structural schema; this module closes the gap:
it inlines ``$ref``s, turns ``X | None`` into an optional ``X``, drops titles and null
defaults, and copies each model's CEL rules into ``x-kubernetes-validations``.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from assistente_operator import GROUP, KIND, PLURAL, SINGULAR, VERSION
from assistente_operator.models import AssistenteDigitalSpec, AssistenteDigitalStatus, CRDModel

MAX_NAME_LENGTH = 40

Schema = dict[str, Any]


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _rules_by_title(model: type[BaseModel], seen: dict[str, type[CRDModel]]) -> None:
    """Maps every CRDModel reachable from ``model`` by its schema title (its class name)."""
    if not issubclass(model, CRDModel) or model.__name__ in seen:
        return
    seen[model.__name__] = model
    for field in model.model_fields.values():
        for candidate in _model_types(field.annotation):
            _rules_by_title(candidate, seen)


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_types(arg))
    return found


def _convert(node: Any, defs: dict[str, Schema], models: dict[str, type[CRDModel]]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs, models) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    while "$ref" in node or "anyOf" in node:
        ref = node.pop("$ref", None)
        if ref is not None:
            merged = copy.deepcopy(defs[ref.rsplit("/", 1)[-1]])
            merged.update(node)  # field-level keys (description, default) win
            node = merged
        any_of = node.pop("anyOf", None)
        if any_of is not None:
            # `X | None` is an optional X: absent, never null.
            options = [option for option in any_of if option.get("type") != "null"]
            if len(options) != 1:
                raise ValueError(f"unsupported union in schema: {any_of}")
            merged = dict(options[0])
            merged.update(node)
            node = merged
            if node.get("default", "absent") is None:
                del node["default"]
    title = node.pop("title", None)
    if node.get("type") == "object" and "properties" in node and title in models:
        rules = models[title].cel_rules
        if rules:
            node["x-kubernetes-validations"] = [dict(rule) for rule in rules]
    if "default" in node:
        node["default"] = _drop_nulls(node["default"])
    result: Schema = {}
    for key, value in node.items():
        if key in {"properties", "$defs"}:
            result[key] = {name: _convert(sub, defs, models) for name, sub in value.items()}
        elif key in {"items", "additionalProperties"}:
            result[key] = _convert(value, defs, models)
        else:
            result[key] = value
    if result.get("type") == "object" and "properties" in result:
        result.pop("additionalProperties", None)  # extra="forbid"; the API server prunes instead
    return result


def model_schema(model: type[CRDModel]) -> Schema:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    models: dict[str, type[CRDModel]] = {}
    _rules_by_title(model, models)
    return dict(_convert(raw, defs, models))


def openapi_schema() -> Schema:
    spec = model_schema(AssistenteDigitalSpec)
    spec["description"] = "Desired state of one assistant deployment (one court or tenant)."
    # No default for spec: a resource must name its credentials (security, Rasa's database
    # user), and the API server checks a default against the CEL rules.
    status = model_schema(AssistenteDigitalStatus)
    status["description"] = "Observed state, written by the operator."
    return {
        "type": "object",
        "description": "AssistenteDigital describes a whole Assistente Digital deployment.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
                # User-facing (kubectl shows it when rejecting the object): Portuguese.
                "message": f"metadata.name deve ter no máximo {MAX_NAME_LENGTH} caracteres "
                "(os objetos filhos recebem sufixos como -redis-headless)",
            }
        ],
    }


def build_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition manifest."""
    condition = ".status.conditions[?(@.type=='Ready')].status"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "assistente-digital"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["ad"],
                "categories": ["assistente-digital"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Ready", "type": "string", "jsonPath": condition},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "API",
                            "type": "string",
                            "description": "Ready/desired API pods",
                            "jsonPath": ".status.apiReplicas",
                        },
                        {
                            "name": "Version",
                            "type": "string",
                            "jsonPath": ".spec.version",
                            "priority": 1,
                        },
                        {
                            "name": "Paused",
                            "type": "boolean",
                            "jsonPath": ".spec.paused",
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }
