"""The OpenAPI document says what the API really answers: every error has the one
``{"error": {...}}`` shape (``api/errors.py``), whatever FastAPI would document by default."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable code, e.g. validation_error")
    message: str = Field(description="What went wrong, in Portuguese, for people")
    details: list[Any] | dict[str, Any] | None = Field(
        default=None, description="Per-field problems of a validation error"
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


REF_TEMPLATE = "#/components/schemas/{model}"
# Any route may answer these (authentication, limits, outages, a malformed body).
COMMON_ERRORS = {
    "400": "Requisição malformada (JSON inválido, protocolo inválido)",
    "401": "Não autenticado (token ausente ou inválido, assinatura inválida)",
    "403": "Sem acesso a este recurso",
    "404": "Não encontrado, ou canal desativado / não configurado",
    "413": "Corpo da requisição acima do limite",
    "422": "Dados inválidos (detalhes por campo)",
    "429": "Limite de requisições excedido (veja Retry-After)",
    "503": "Fila cheia, PostgreSQL ou Redis indisponível (veja Retry-After)",
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["ErrorBody"] = ErrorBody.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            for name, definition in schemas["ErrorBody"].pop("$defs", {}).items():
                schemas[name] = definition
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    for status, description in COMMON_ERRORS.items():
                        responses[status] = {"description": description, "content": error}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
