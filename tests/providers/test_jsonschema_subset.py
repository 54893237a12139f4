"""JSON Schema -> Gemini Schema translation."""

from __future__ import annotations

from typing import Any

import pytest

from tiergate.errors import BadRequest
from tiergate.providers.jsonschema_subset import gemini_schema


def g(schema: dict[str, Any]) -> dict[str, Any]:
    return gemini_schema(schema, "tools[0].function.parameters")


def test_types_and_kept_keywords() -> None:
    assert g(
        {
            "type": "object",
            "title": "Order",
            "description": "An order",
            "properties": {
                "sku": {"type": "string", "minLength": 3, "maxLength": 9, "pattern": "^[A-Z]+$"},
                "qty": {"type": "integer", "minimum": 1, "maximum": 99, "format": "int32"},
                "price": {"type": "number", "format": "double", "default": 1.5},
                "gift": {"type": "boolean"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": 5,
                },
            },
            "required": ["sku", "qty", "not-a-property"],
        }
    ) == {
        "type": "OBJECT",
        "title": "Order",
        "description": "An order",
        "properties": {
            "sku": {"type": "STRING", "minLength": 3, "maxLength": 9, "pattern": "^[A-Z]+$"},
            "qty": {"type": "INTEGER", "format": "int32", "minimum": 1, "maximum": 99},
            "price": {"type": "NUMBER", "format": "double", "default": 1.5},
            "gift": {"type": "BOOLEAN"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1, "maxItems": 5},
        },
        "required": ["sku", "qty"],
    }


def test_unsupported_keywords_are_dropped() -> None:
    assert g(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "x",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "email": {"type": "string", "format": "email", "examples": ["a@b.c"]},
                "n": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 2},
            },
            "patternProperties": {"^x": {"type": "string"}},
        }
    ) == {"type": "OBJECT", "properties": {"email": {"type": "STRING"}, "n": {"type": "NUMBER"}}}


def test_enums_and_const() -> None:
    assert g({"type": "string", "enum": ["a", "b"]}) == {
        "type": "STRING",
        "format": "enum",
        "enum": ["a", "b"],
    }
    assert g({"const": "only"}) == {"type": "STRING", "format": "enum", "enum": ["only"]}
    assert g({"type": "integer", "enum": [1, 2]}) == {"type": "INTEGER"}


def test_nullable_forms() -> None:
    assert g({"type": ["string", "null"]}) == {"type": "STRING", "nullable": True}
    assert g({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "d"}) == {
        "type": "INTEGER",
        "nullable": True,
        "description": "d",
    }
    assert g({"oneOf": [{"type": "integer"}, {"type": "string"}]}) == {
        "anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]
    }
    assert g({"type": ["integer", "string"]}) == {
        "anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]
    }


def test_refs_are_inlined_as_pydantic_emits_them() -> None:
    schema = {
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Home"},
            "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
        },
    }
    address = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}
    assert g(schema) == {
        "type": "OBJECT",
        "properties": {
            "home": {**address, "description": "Home"},
            "work": {**address, "nullable": True},
        },
    }


def test_all_of_is_merged() -> None:
    schema = {
        "definitions": {
            "Base": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
        },
        "allOf": [
            {"$ref": "#/definitions/Base"},
            {"properties": {"n": {"type": "integer"}}, "required": ["n"]},
        ],
    }
    assert g(schema) == {
        "type": "OBJECT",
        "properties": {"id": {"type": "STRING"}, "n": {"type": "INTEGER"}},
        "required": ["id", "n"],
    }


@pytest.mark.parametrize(
    "schema",
    [
        {
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node",
        },
        {"$ref": "https://example.com/schema.json"},
        {"$ref": "#/$defs/Missing"},
        {"type": "tuple"},
    ],
)
def test_untranslatable_schemas_are_bad_requests(schema: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as err:
        g(schema)
    assert err.value.param == "tools[0].function.parameters"


def test_implicit_types_are_inferred() -> None:
    assert g({"properties": {"a": {"items": {"type": "string"}}}}) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "ARRAY", "items": {"type": "STRING"}}},
    }
