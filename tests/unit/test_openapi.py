"""The OpenAPI document is complete: what `/docs` shows a user is accurate and helpful."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.support.role_table import LOGIN, PUBLIC, ROLE_TABLE, expected_scope


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app: FastAPI = create_app(Settings(_env_file=None, JWT_SECRET="r" * 48))
    return app.openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def test_every_operation_is_described(spec: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in spec["tags"]}
    for method, path, op in operations(spec):
        where = f"{method} {path}"
        assert op.get("summary"), where
        assert len(op.get("description", "")) > 20, where
        assert op.get("tags"), where
        assert set(op["tags"]) <= declared, f"{where}: undeclared tag {op['tags']}"


def test_every_tag_has_a_description(spec: dict[str, Any]) -> None:
    for tag in spec["tags"]:
        assert len(tag.get("description", "")) > 20, tag["name"]


def test_websocket_routes_are_described_in_their_tags(spec: dict[str, Any]) -> None:
    text = " ".join(tag["description"] for tag in spec["tags"])
    for method, path in ROLE_TABLE:
        if method == "WS":
            assert path in text, path


def test_errors_are_documented(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        role = ROLE_TABLE.get((method, path))
        codes = set(op["responses"])
        where = f"{method} {path}"
        if role not in (None, PUBLIC):
            assert "401" in codes, where
            scope = expected_scope(method, path)
            if role != LOGIN and (role != "viewer" or scope == "global"):
                assert "403" in codes, where
            if scope == "project":
                assert "404" in codes, f"{where}: a project the caller has no role in"
        errors = [code for code in codes if code.startswith(("4", "5")) and code != "422"]
        for code in errors:
            content = op["responses"][code].get("content", {}).get("application/json", {})
            assert content.get("schema"), f"{where} {code} has no error schema"


def test_bearer_security_for_authorize(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert any(s["type"] in {"oauth2", "http"} for s in schemes.values())
    secured = [op for _, _, op in operations(spec) if op.get("security")]
    assert len(secured) > 50


def test_request_bodies_have_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for method, path, op in operations(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if not body:
            continue
        ref = body["schema"].get("$ref") or next(
            (s.get("$ref") for s in body["schema"].get("anyOf", []) if "$ref" in s), None
        )
        if ref is None:
            continue
        schema = schemas[ref.rsplit("/", 1)[-1]]
        properties = schema.get("properties", {}).values()
        assert (
            schema.get("examples")
            or schema.get("example")
            or any("examples" in prop or "example" in prop for prop in properties)
        ), f"{method} {path}: no example for {ref}"


async def test_docs_pages_load(make_settings: Any) -> None:
    app = create_app(make_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for page in ("/docs", "/redoc"):
            reply = await http.get(page)
            assert reply.status_code == 200
            assert "text/html" in reply.headers["content-type"]
        schema = await http.get("/openapi.json")
        assert schema.status_code == 200
        assert schema.json()["info"]["title"] == "lxd-api"
