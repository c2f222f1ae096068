"""Domains and templates over HTTP: the seed's shapes and limits, slugs unique per
workspace, template placeholders checked, and another workspace's ids a 404."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import Account, add_member, assert_envelope
from vur.core.db import Database
from vur.forge.models import Template

pytestmark = pytest.mark.anyio

DOMAIN_FIELDS = {"id", "name", "slug", "description", "config", "is_active", "created_at", "updated_at"}
TEMPLATE = {
    "name": "Template Chat Básico",
    "use_case": "chat-training",
    "system_prompt": "Você é um assistente útil e prestativo.",
    "user_prompt_template": "Baseado no seguinte contexto: {content}\n\nGere uma resposta adequada.",
    "target_model_family": "llama",
    "config": {"temperature": 0.7, "max_tokens": 1000},
}


async def create_domain(client: httpx.AsyncClient, account: Account, **body: object) -> dict:
    response = await client.post("/api/v1/domains", headers=account.headers, json={"name": "VR Chat", "slug": f"vr-chat-{uuid.uuid4().hex[:6]}", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def test_domain_crud_as_the_seed_shows(client: httpx.AsyncClient, account: Account) -> None:
    body = {"name": "VR Chat", "slug": "vr-chat", "description": "IA conversacional geral", "config": {"primary_model": "llama-3.1-8b-instruct"}}
    created = await client.post("/api/v1/domains", headers=account.headers, json=body)
    assert created.status_code == 201, created.text
    domain = created.json()
    assert set(domain) == DOMAIN_FIELDS and domain["is_active"] is True and {k: domain[k] for k in body} == body

    updated = await client.put(f"/api/v1/domains/{domain['id']}", headers=account.headers, json={"description": "Nova descrição", "is_active": False})
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "Nova descrição" and updated.json()["name"] == "VR Chat" and updated.json()["is_active"] is False
    assert (await client.get(f"/api/v1/domains/{domain['id']}", headers=account.headers)).json()["is_active"] is False

    # active_only defaults to true.
    await create_domain(client, account, name="VR Lex")
    active = await client.get("/api/v1/domains", headers=account.headers)
    assert [d["name"] for d in active.json()] == ["VR Lex"] and active.headers["X-Total-Count"] == "1"
    everything = await client.get("/api/v1/domains", headers=account.headers, params={"active_only": "false"})
    assert sorted(d["name"] for d in everything.json()) == ["VR Chat", "VR Lex"]


async def test_slugs_are_unique_per_workspace(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    first = await create_domain(client, account, slug="vr-code")
    assert "slug" in assert_envelope(await client.post("/api/v1/domains", headers=account.headers, json={"name": "Outro", "slug": "vr-code"}), 409)["details"]
    second = await create_domain(client, account, slug="vr-lex")
    moved = await client.put(f"/api/v1/domains/{second['id']}", headers=account.headers, json={"slug": "vr-code"})
    assert_envelope(moved, 409)
    # Keeping one's own slug is no conflict; another workspace may use the same slug.
    assert (await client.put(f"/api/v1/domains/{first['id']}", headers=account.headers, json={"slug": "vr-code"})).status_code == 200
    await create_domain(client, other_account, slug="vr-code")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "ok"}, "name"),
        ({"name": "x" * 101, "slug": "ok"}, "name"),
        ({"name": "VR", "slug": "Not A Slug"}, "slug"),
        ({"name": "VR", "slug": "s" * 101}, "slug"),
        ({"name": "VR", "slug": "ok", "config": "not an object"}, "config"),
        ({"name": "VR", "slug": "ok", "owner": "me"}, "owner"),
    ],
)
async def test_domain_validation_names_the_field(client: httpx.AsyncClient, account: Account, body: dict, field: str) -> None:
    assert field in assert_envelope(await client.post("/api/v1/domains", headers=account.headers, json=body), 422)["details"]


async def test_domain_update_refuses_nulls_and_bad_json(client: httpx.AsyncClient, account: Account) -> None:
    domain = await create_domain(client, account)
    assert_envelope(await client.put(f"/api/v1/domains/{domain['id']}", headers=account.headers, json={"name": None}), 422)
    bad_json = await client.put(f"/api/v1/domains/{domain['id']}", headers={**account.headers, "Content-Type": "application/json"}, content=b'{"name": ')
    assert_envelope(bad_json, 400)
    cleared = await client.put(f"/api/v1/domains/{domain['id']}", headers=account.headers, json={"description": None})
    assert cleared.status_code == 200 and cleared.json()["description"] is None


async def test_domains_of_another_workspace_are_404(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    domain = await create_domain(client, account)
    assert_envelope(await client.get(f"/api/v1/domains/{domain['id']}", headers=other_account.headers), 404)
    assert_envelope(await client.put(f"/api/v1/domains/{domain['id']}", headers=other_account.headers, json={"name": "mine"}), 404)
    assert (await client.get("/api/v1/domains", headers=other_account.headers)).json() == []
    assert (await client.get(f"/api/v1/domains/{domain['id']}", headers=account.headers)).json()["name"] == "VR Chat"


async def test_viewers_read_but_do_not_write(client: httpx.AsyncClient, account: Account) -> None:
    viewer = await add_member(client, account, "viewer")
    domain = await create_domain(client, account)
    assert (await client.get(f"/api/v1/domains/{domain['id']}", headers=viewer.headers)).status_code == 200
    assert_envelope(await client.post("/api/v1/domains", headers=viewer.headers, json={"name": "x", "slug": "x"}), 403)
    assert_envelope(await client.post("/api/v1/templates", headers=viewer.headers, json={**TEMPLATE, "domain_id": domain["id"]}), 403)


# --- templates ----------------------------------------------------------------------------


async def test_template_as_the_seed_shows(client: httpx.AsyncClient, account: Account) -> None:
    domain = await create_domain(client, account)
    created = await client.post("/api/v1/templates", headers=account.headers, json={**TEMPLATE, "domain_id": domain["id"]})
    assert created.status_code == 201, created.text
    template = created.json()
    assert {k: template[k] for k in TEMPLATE} == TEMPLATE and template["is_active"] is True and template["variables"] == []
    assert (await client.get(f"/api/v1/templates/{template['id']}", headers=account.headers)).json() == template
    listed = await client.get("/api/v1/templates", headers=account.headers, params={"domain_id": domain["id"], "use_case": "chat-training"})
    assert [t["id"] for t in listed.json()] == [template["id"]] and listed.headers["X-Total-Count"] == "1"
    assert (await client.get("/api/v1/templates", headers=account.headers, params={"use_case": "other"})).json() == []


async def test_declared_variables_may_be_used(client: httpx.AsyncClient, account: Account) -> None:
    domain = await create_domain(client, account)
    body = {**TEMPLATE, "domain_id": domain["id"], "user_prompt_template": "Em tom {tone}, para {audience}: {content}\nJSON: {{\"q\": \"...\"}}", "variables": ["tone", "audience"]}
    created = await client.post("/api/v1/templates", headers=account.headers, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["variables"] == ["tone", "audience"]


@pytest.mark.parametrize(
    ("template", "variables", "says"),
    [
        ("Responda com base no texto.", [], "{content}"),
        ("Contexto: {content} em tom {tone}", [], "undeclared placeholders ['tone']"),
        ("Contexto: {content.__class__}", [], "plain names"),
        ("Contexto: {content} {0}", [], "plain names"),
        ("Contexto: {content!r}", [], "no format spec"),
        ("Contexto: {content", [], "literal brace"),
        ("Contexto: {content} }", [], "literal brace"),
    ],
)
async def test_template_placeholders_are_checked(client: httpx.AsyncClient, account: Account, template: str, variables: list[str], says: str) -> None:
    domain = await create_domain(client, account)
    body = {**TEMPLATE, "domain_id": domain["id"], "user_prompt_template": template, "variables": variables}
    details = assert_envelope(await client.post("/api/v1/templates", headers=account.headers, json=body), 422)["details"]
    assert says in details["user_prompt_template"], details
    assert (await client.get("/api/v1/templates", headers=account.headers)).json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"system_prompt": ""}, "system_prompt"),
        ({"use_case": "u" * 101}, "use_case"),
        ({"variables": ["content"]}, "variables"),
        ({"variables": ["not a name"]}, "variables"),
        ({"domain_id": "not-a-uuid"}, "domain_id"),
    ],
)
async def test_template_fields_are_validated(client: httpx.AsyncClient, account: Account, change: dict, field: str) -> None:
    domain = await create_domain(client, account)
    body = {**TEMPLATE, "domain_id": domain["id"], **change}
    assert field in assert_envelope(await client.post("/api/v1/templates", headers=account.headers, json=body), 422)["details"]


async def test_templates_need_a_domain_of_the_workspace(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    theirs = await create_domain(client, other_account)
    assert_envelope(await client.post("/api/v1/templates", headers=account.headers, json={**TEMPLATE, "domain_id": theirs["id"]}), 404)
    assert_envelope(await client.post("/api/v1/templates", headers=account.headers, json={**TEMPLATE, "domain_id": str(uuid.uuid4())}), 404)


async def test_only_active_templates_are_listed(client: httpx.AsyncClient, account: Account, other_account: Account, database: Database) -> None:
    domain = await create_domain(client, account)
    kept = (await client.post("/api/v1/templates", headers=account.headers, json={**TEMPLATE, "domain_id": domain["id"]})).json()
    retired = (await client.post("/api/v1/templates", headers=account.headers, json={**TEMPLATE, "name": "old", "domain_id": domain["id"]})).json()
    with database.session() as session:
        session.get(Template, uuid.UUID(retired["id"])).is_active = False
    assert [t["id"] for t in (await client.get("/api/v1/templates", headers=account.headers)).json()] == [kept["id"]]
    assert (await client.get(f"/api/v1/templates/{retired['id']}", headers=account.headers)).json()["is_active"] is False
    assert_envelope(await client.get(f"/api/v1/templates/{kept['id']}", headers=other_account.headers), 404)
    assert (await client.get("/api/v1/templates", headers=other_account.headers)).json() == []
