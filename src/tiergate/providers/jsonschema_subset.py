"""JSON Schema -> the OpenAPI-3.0 subset Gemini accepts as a `Schema` object.

Gemini's `Schema` (function `parameters`, `responseSchema`) knows: `type` (upper-case
enum), `format`, `title`, `description`, `nullable`, `enum` (strings only), `items`,
`minItems`, `maxItems`, `properties`, `required`, `minProperties`, `maxProperties`,
`minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `default`, `example`,
`anyOf` and `propertyOrdering`. Anything else makes the request fail, so:

- local `$ref`s (`#/$defs/...`, `#/definitions/...`, as pydantic emits them) are inlined;
  a recursive schema cannot be inlined and is refused with `BadRequest`;
- `type: [T, "null"]`, `anyOf: [X, {"type": "null"}]` and `const` become `nullable` /
  `enum`; `oneOf` becomes `anyOf`; an `allOf` of object schemas is merged;
- keywords outside the subset (`additionalProperties`, `$schema`, `$id`, `examples`,
  `exclusiveMinimum`, `not`, `if`/`then`, `patternProperties`, ...) are dropped: they
  constrain, and Gemini cannot enforce them, but the answer stays usable;
- `enum` values that are not strings, and `format`s Gemini does not list for the type,
  are dropped for the same reason.
"""

from __future__ import annotations

from typing import Any

from tiergate.errors import BadRequest

_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
    "null": "NULL",
}
_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
_COPIED = (
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
)
_MAX_DEPTH = 64


def gemini_schema(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """The Gemini `Schema` for a JSON Schema; `where` names the field in errors."""
    return _Translator(schema, where).convert(schema, 0, ())


class _Translator:
    def __init__(self, root: dict[str, Any], where: str):
        self.root = root
        self.where = where

    def fail(self, why: str) -> BadRequest:
        return BadRequest(f"{self.where}: {why}", param=self.where)

    def resolve(self, ref: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if ref in seen:
            raise self.fail(f"recursive schema ({ref}) cannot be expressed for this provider")
        if not ref.startswith("#/"):
            raise self.fail(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for token in ref[2:].split("/"):
            key = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or key not in node:
                raise self.fail(f"$ref {ref!r} does not resolve")
            node = node[key]
        if not isinstance(node, dict):
            raise self.fail(f"$ref {ref!r} is not a schema")
        return node

    def convert(self, schema: Any, depth: int, seen: tuple[str, ...]) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise self.fail("schema is nested too deeply")
        if schema is True or schema == {}:
            return {}
        if not isinstance(schema, dict):
            raise self.fail(f"expected a schema object, got {type(schema).__name__}")
        if "$ref" in schema:
            ref = schema["$ref"]
            target = self.resolve(ref, seen)
            # Sibling keywords (often a description) refine the referenced schema.
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.convert(merged, depth + 1, (*seen, ref))
        if "allOf" in schema:
            return self.convert(self.merge_all_of(schema), depth + 1, seen)
        out: dict[str, Any] = {}
        variants = schema.get("anyOf", schema.get("oneOf"))
        if isinstance(variants, list):
            nullable = any(isinstance(v, dict) and v.get("type") == "null" for v in variants)
            rest = [v for v in variants if not (isinstance(v, dict) and v.get("type") == "null")]
            if len(rest) == 1:
                out = self.convert(rest[0], depth + 1, seen)
            elif rest:
                out["anyOf"] = [self.convert(v, depth + 1, seen) for v in rest]
            if nullable:
                out["nullable"] = True
        self.convert_type(schema, out, depth, seen)
        for key in _COPIED:
            if key in schema:
                out[key] = schema[key]
        return out

    def convert_type(
        self, schema: dict[str, Any], out: dict[str, Any], depth: int, seen: tuple[str, ...]
    ) -> None:
        kind = schema.get("type")
        if isinstance(kind, list):
            names = [k for k in kind if k != "null"]
            if "null" in kind:
                out["nullable"] = True
            if len(names) > 1:
                out["anyOf"] = [self.convert({**schema, "type": k}, depth + 1, seen) for k in names]
                return
            kind = names[0] if names else "null"
        if "const" in schema and "enum" not in schema:
            schema = {**schema, "enum": [schema["const"]]}
        if kind is None:
            # Infer what JSON Schema leaves implicit, so nested keywords still apply.
            if "properties" in schema:
                kind = "object"
            elif "items" in schema:
                kind = "array"
            elif "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
                kind = "string"
        if kind is None:
            return
        if kind not in _TYPES:
            raise self.fail(f"unknown JSON Schema type {kind!r}")
        gtype = _TYPES[kind]
        out["type"] = gtype
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(gtype, ()):
            out["format"] = fmt
        enum = schema.get("enum")
        if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
            out["enum"] = list(enum)
            if gtype == "STRING":
                out["format"] = "enum"
        if gtype == "OBJECT" and isinstance(schema.get("properties"), dict):
            props = {
                name: self.convert(sub, depth + 1, seen)
                for name, sub in schema["properties"].items()
            }
            if props:
                out["properties"] = props
                required = [r for r in schema.get("required", ()) if r in props]
                if required:
                    out["required"] = required
        if gtype == "ARRAY" and isinstance(schema.get("items"), dict | bool):
            out["items"] = self.convert(schema["items"], depth + 1, seen)

    def merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        parts = schema["allOf"]
        if not isinstance(parts, list):
            raise self.fail("allOf must be a list")
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for entry in parts:
            part: Any = entry
            seen: tuple[str, ...] = ()
            while isinstance(part, dict) and "$ref" in part:
                ref = part["$ref"]
                rest = {k: v for k, v in part.items() if k != "$ref"}
                part, seen = {**self.resolve(ref, seen), **rest}, (*seen, ref)
            if not isinstance(part, dict):
                raise self.fail("allOf entries must be schema objects")
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged
