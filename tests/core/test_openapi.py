"""The published API description: tags per domain, examples on the main request bodies,
and the interactive docs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from vur.forecasting.schemas import TrainRequest
from vur.identity.schemas import LoginRequest, RegisterRequest

pytestmark = pytest.mark.anyio

DOMAINS = ["health", "auth", "datasets", "forecasting", "models", "jobs"]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def test_every_reference_resolves_to_a_component(spec: dict[str, Any]) -> None:
    """A body schema written by hand from a model's JSON schema kept pydantic's local
    "#/$defs/..." references, which no OpenAPI tool can follow (found by fuzzing)."""

    def references(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    found = set(references(spec))
    assert found and {ref for ref in found if not ref.startswith("#/components/schemas/")} == set()
    assert {ref for ref in found if ref.rsplit("/", 1)[-1] not in spec["components"]["schemas"]} == set()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items() if method in HTTP_METHODS]


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def json_body_examples(spec: dict[str, Any], method: str, path: str) -> list[Any]:
    """Examples offered for an operation's JSON body, wherever OpenAPI allows them."""
    media = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
    found: list[Any] = []
    if "example" in media:
        found.append(media["example"])
    found += [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    schema = resolve(media.get("schema", {}), spec)
    found += schema.get("examples", [])
    if "example" in schema:
        found.append(schema["example"])
    return found


async def test_one_tag_per_domain(spec: dict[str, Any]) -> None:
    names = [tag["name"] for tag in spec["tags"]]
    assert len(names) == len(set(names)), names
    assert set(DOMAINS) <= set(names), names
    for tag in spec["tags"]:
        assert tag.get("description"), tag


async def test_every_operation_has_a_declared_tag(spec: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in spec["tags"]}
    ops = operations(spec)
    assert len(ops) > 10
    for method, path, op in ops:
        assert op.get("tags"), f"{method.upper()} {path} has no tag"
        assert set(op["tags"]) <= declared, (method, path, op["tags"])
        assert op.get("summary"), f"{method.upper()} {path} has no summary"


async def test_every_domain_tag_is_used(spec: dict[str, Any]) -> None:
    used = {tag for _, _, op in operations(spec) for tag in op.get("tags", [])}
    assert set(DOMAINS) <= used, used


@pytest.mark.parametrize(
    "path, required",
    [
        ("/api/v1/auth/register", {"email", "password", "name"}),
        ("/api/v1/auth/login", {"email", "password"}),
        ("/api/v1/models/train", {"dataset_id", "algorithm"}),
    ],
)
async def test_main_request_bodies_have_examples(spec: dict[str, Any], path: str, required: set[str]) -> None:
    examples = json_body_examples(spec, "post", path)
    assert examples, f"POST {path} has no request example"
    for example in examples:
        assert isinstance(example, dict) and required <= set(example), example


@pytest.mark.parametrize(
    "path, model",
    [("/api/v1/auth/register", RegisterRequest), ("/api/v1/auth/login", LoginRequest), ("/api/v1/models/train", TrainRequest)],
)
async def test_request_examples_are_valid(spec: dict[str, Any], path: str, model: type[BaseModel]) -> None:
    # An example that the API would refuse is worse than none.
    for example in json_body_examples(spec, "post", path):
        model.model_validate(example)


async def test_login_documents_the_oauth2_form(spec: dict[str, Any]) -> None:
    content = spec["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    form = content["application/x-www-form-urlencoded"]["schema"]
    assert {"username", "password"} <= set(form["required"])


async def test_bearer_security_scheme_points_at_login(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    flows = [s["flows"]["password"] for s in schemes.values() if s.get("type") == "oauth2"]
    assert flows and flows[0]["tokenUrl"] == "/api/v1/auth/login"
    me = spec["paths"]["/api/v1/auth/me"]["get"]
    assert me.get("security"), me


async def test_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()
    assert "/openapi.json" in response.text
