"""Registered LLMs: rows of the model registry (kind llm) in seed 004's shape."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Account, assert_envelope

pytestmark = pytest.mark.anyio

SEED_FIELDS = {"id", "kind", "domain_id", "name", "base_model", "provider", "model_family", "version", "status", "config", "capabilities", "created_at", "updated_at"}


async def register(client: httpx.AsyncClient, account: Account, **overrides: object) -> httpx.Response:
    body = {"name": "VR Chat Fine-tuned v1", "base_model": "llama-3.1-8b-instruct", "provider": "together", "model_family": "llama", "version": "1.0", **overrides}
    return await client.post("/api/v1/models", headers=account.headers, json=body)


async def test_register_list_and_filter(client: httpx.AsyncClient, account: Account) -> None:
    domain_id = (await client.post("/api/v1/domains", headers=account.headers, json={"name": "VR Chat", "slug": f"vr-{uuid.uuid4().hex[:6]}"})).json()["id"]
    created = await register(client, account, domain_id=domain_id, config={"max_tokens": 4096}, capabilities={"supports_functions": True})
    assert created.status_code == 201, created.text
    model = created.json()
    assert set(model) == SEED_FIELDS
    assert model["status"] == "registered" and model["kind"] == "llm" and model["domain_id"] == domain_id
    assert model["config"] == {"max_tokens": 4096} and model["capabilities"] == {"supports_functions": True}
    other = (await register(client, account, provider="openai", base_model="gpt-4o-mini-2024-07-18", name="GPT")).json()

    assert (await client.get(f"/api/v1/models/{model['id']}", headers=account.headers)).json() == model
    everything = await client.get("/api/v1/models", headers=account.headers)
    assert [m["id"] for m in everything.json()] == [other["id"], model["id"]]
    by_provider = await client.get("/api/v1/models", headers=account.headers, params={"provider": "together"})
    assert [m["id"] for m in by_provider.json()] == [model["id"]] and by_provider.headers["X-Total-Count"] == "1"
    by_domain = await client.get("/api/v1/models", headers=account.headers, params={"domain_id": domain_id, "kind": "llm"})
    assert [m["id"] for m in by_domain.json()] == [model["id"]]
    assert (await client.get("/api/v1/models", headers=account.headers, params={"kind": "forecaster"})).json() == []


async def test_lifecycle_through_the_registry(client: httpx.AsyncClient, account: Account) -> None:
    model_id = (await register(client, account)).json()["id"]
    # Nothing fine-tuned yet: nothing to deploy.
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/deploy", headers=account.headers), 409)
    archived = await client.post(f"/api/v1/models/{model_id}/archive", headers=account.headers)
    assert archived.status_code == 200 and archived.json()["status"] == "archived" and set(archived.json()) == SEED_FIELDS
    restored = await client.post(f"/api/v1/models/{model_id}/restore", headers=account.headers)
    assert restored.json()["status"] == "registered"
    assert (await client.delete(f"/api/v1/models/{model_id}", headers=account.headers)).status_code == 204
    assert_envelope(await client.get(f"/api/v1/models/{model_id}", headers=account.headers), 404)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"base_model": None}, "base_model"),
        ({"provider": "Open AI"}, "provider"),
        ({"config": ["max_tokens"]}, "config"),
        ({"capabilities": "all"}, "capabilities"),
        ({"domain_id": "not-a-uuid"}, "domain_id"),
        ({"status": "deployed"}, "status"),
    ],
)
async def test_bad_registrations_are_422(client: httpx.AsyncClient, account: Account, overrides: dict, field: str) -> None:
    details = assert_envelope(await register(client, account, **overrides), 422)["details"]
    assert field in details, details
    assert (await client.get("/api/v1/models", headers=account.headers)).json() == []


async def test_unknown_or_foreign_domain_is_404(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    foreign = (await client.post("/api/v1/domains", headers=other_account.headers, json={"name": "B", "slug": "b-domain"})).json()["id"]
    for domain_id in (foreign, str(uuid.uuid4())):
        assert_envelope(await register(client, account, domain_id=domain_id), 404)
    assert (await client.get("/api/v1/models", headers=account.headers)).json() == []
    assert_envelope(await client.post("/api/v1/models", headers={**account.headers, "Content-Type": "application/json"}, content=b"[1,"), 400)
