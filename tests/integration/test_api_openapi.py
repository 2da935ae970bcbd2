"""The OpenAPI document: valid JSON, every route described, every reference resolvable."""

from __future__ import annotations

import json
from typing import Any

from callcenter.web.openapi import document
from tests.integration.api_support import call_json, running

METHODS = {"get", "post", "put", "patch", "delete"}


def refs(node: Any) -> list[str]:
    """Every $ref in a JSON tree."""
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_served_document_lists_every_route(pool: Any, db_url: str) -> None:
    async with running(db_url) as (_, server):
        status, doc = await call_json(server, "GET", "/api/openapi.json")
        routes = {
            (route.method.lower(), route.resource.canonical)
            for route in server.app.router.routes()
            if route.resource is not None and route.method.lower() in METHODS
        }
    assert status == 200
    assert doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in METHODS}
    served = {r for r in routes if r[1] != "/healthz"}
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented routes that do not exist"


def test_document_is_consistent() -> None:
    doc = json.loads(json.dumps(document()))  # plain JSON all the way down
    for ref in refs(doc):
        resolve(doc, ref)
    for path, ops in doc["paths"].items():
        params = {p["name"] for op in ops.values() for p in op.get("parameters", [])}
        for name in (seg[1:-1] for seg in path.split("/") if seg.startswith("{")):
            assert name in params, f"{path}: path parameter {name} not described"
        for method, op in ops.items():
            assert op["summary"] and op["responses"], f"{method} {path}"
            if "security" in op and op["security"] == [{"bearer": []}]:
                assert "401" in op["responses"] and "403" in op["responses"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
