"""Every successful JSON response of the API is typed in the OpenAPI schema: no 2xx body, and
no object nested in one, is a bare ``{"type": "object"}`` without its fields."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def untyped_objects(schema: dict[str, Any], node: dict[str, Any], where: str,
                    seen: frozenset[str] = frozenset()) -> list[str]:
    """Where ``node`` (or anything inside it) is an object with neither properties nor a typed
    map (``additionalProperties``) nor alternatives."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return untyped_objects(schema, schema["components"]["schemas"][name], where,
                               seen | {name})
    found = []
    alternatives = [*node.get("oneOf", []), *node.get("anyOf", []), *node.get("allOf", [])]
    extra = node.get("additionalProperties")
    if node.get("type") == "object" and not node.get("properties") and not alternatives \
            and not extra:
        found.append(where)
    for name, child in (node.get("properties") or {}).items():
        found += untyped_objects(schema, child, f"{where}.{name}", seen)
    if isinstance(node.get("items"), dict):
        found += untyped_objects(schema, node["items"], f"{where}[]", seen)
    if isinstance(extra, dict):
        found += untyped_objects(schema, extra, f"{where}{{}}", seen)
    for i, child in enumerate(alternatives):
        found += untyped_objects(schema, child, f"{where}|{i}", seen)
    return found


def test_every_2xx_json_response_describes_its_fields(schema) -> None:
    untyped = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation.get("responses", {}).items():
                if not code.startswith("2"):
                    continue
                for content_type, content in (response.get("content") or {}).items():
                    if "json" in content_type:
                        untyped += untyped_objects(
                            schema, content.get("schema", {}),
                            f"{method.upper()} {path} {code}")
    assert untyped == []


def test_the_checker_finds_a_bare_object() -> None:
    schema = {"components": {"schemas": {"Bare": {"type": "object"}}}}
    node = {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Bare"},
                                             "b": {"type": "array", "items": {"type": "object"}}}}
    assert untyped_objects(schema, node, "x") == ["x.a", "x.b[]"]
