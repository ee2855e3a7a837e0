"""Publishes the event catalogue in the OpenAPI document.

Each event type becomes two components: its `data` model (from
`domain.catalogue.DATA_MODELS`) and an envelope whose `type` is fixed to it;
the request body of POST /v1/events is one such envelope or a batch of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from domain.catalogue import DATA_MODELS

REF = "#/components/schemas/{model}"

EXAMPLE_EVENT: dict[str, Any] = {
    "event_id": "3f0c1c9e-6a51-4c84-9a8e-0c2f5b7d9e11",
    "type": "CustomerRegistered",
    "occurred_at": "2025-03-01T10:00:00+08:00",
    "source": "branch:BJ001",
    "actor": "officer:李娜",
    "data": {
        "customer_id": "8d2f6a4b-1c3e-4f5a-9b7c-2e4d6f8a0b1c",
        "name": "王芳",
        "address": {
            "line": "北京市朝阳区建国路88号3号楼2单元501室",
            "city": "北京市",
            "district": "朝阳区",
            "postal_code": "100022",
        },
        "national_id": "110105198203154321",
        "birth_date": "1982-03-15",
        "gender": "female",
        "phone": "+86 138 0013 8000",
        "branch_code": "BJ001",
        "region_code": "BJ",
    },
}

EXAMPLE_ORDER: dict[str, Any] = {
    "event_id": "5b7e2d10-94c3-4f0a-8e61-7d3c2b1a0f99",
    "type": "OrderPlaced",
    "occurred_at": "2025-03-02T14:30:00+08:00",
    "source": "app:mobile",
    "actor": "customer:王芳",
    "data": {
        "order_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "customer_id": "8d2f6a4b-1c3e-4f5a-9b7c-2e4d6f8a0b1c",
        "product": "安心理财三号",
        "amount": "50000.00",
        "channel": "app",
    },
}


def _strings_only_for_money(node: Any) -> Any:
    """Money is posted as a decimal string; floats are refused, so don't advertise numbers."""
    if isinstance(node, dict):
        options = node.get("anyOf")
        if isinstance(options, list) and len(options) == 2:
            kinds = {o.get("type") for o in options if isinstance(o, dict)}
            if kinds == {"number", "string"}:
                text = next(o for o in options if o.get("type") == "string")
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                return _strings_only_for_money({**rest, **text})
        return {k: _strings_only_for_money(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_strings_only_for_money(v) for v in node]
    return node


def catalogue_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in DATA_MODELS.items():
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        schemas[f"{name}Event"] = {
            "title": f"{name}Event",
            "type": "object",
            "additionalProperties": False,
            "required": ["event_id", "type", "occurred_at", "source", "data"],
            "properties": {
                "event_id": {"type": "string", "format": "uuid"},
                "type": {"type": "string", "enum": [name]},
                "occurred_at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "RFC 3339 with an offset, e.g. 2025-03-01T10:00:00+08:00",
                },
                "source": {"type": "string", "minLength": 1, "maxLength": 200},
                "actor": {
                    "anyOf": [
                        {"type": "string", "minLength": 1, "maxLength": 200},
                        {"type": "null"},
                    ]
                },
                "data": {"$ref": REF.format(model=name)},
            },
        }
    schemas["EventEnvelope"] = {
        "title": "EventEnvelope",
        "description": "One event; `type` selects the schema of `data`.",
        "oneOf": [{"$ref": REF.format(model=f"{n}Event")} for n in DATA_MODELS],
        "discriminator": {
            "propertyName": "type",
            "mapping": {n: REF.format(model=f"{n}Event") for n in DATA_MODELS},
        },
    }
    schemas["EventBatch"] = {
        "title": "EventBatch",
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": REF.format(model="EventEnvelope")},
            }
        },
    }
    return _strings_only_for_money(schemas)  # type: ignore[no-any-return]


def events_request_body(max_batch_events: int) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": (
                f'One event, or up to {max_batch_events} as {{"events": [...]}}, '
                "stored all-or-nothing."
            ),
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": REF.format(model="EventEnvelope")},
                            {"$ref": REF.format(model="EventBatch")},
                        ]
                    },
                    "examples": {
                        "one": {"summary": "A new customer", "value": EXAMPLE_EVENT},
                        "batch": {
                            "summary": "A batch",
                            "value": {"events": [EXAMPLE_EVENT, EXAMPLE_ORDER]},
                        },
                    },
                }
            },
        }
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
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(catalogue_schemas())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
