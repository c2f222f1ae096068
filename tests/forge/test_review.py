"""Review over HTTP: the pending queue, approve, reject (justification required), edit (at
least one field; previous and new values), history oldest first, the reviewer recorded,
and counters that equal a count of the items by status under concurrent reviews."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import Account, add_member, assert_envelope
from tests.forge.instruction_helpers import PARAGRAPHS, generated, pending, source
from vur.core.db import Database
from vur.forge.models import InstructionItem

pytestmark = pytest.mark.anyio

REVIEW_FIELDS = {"id", "dataset_item_id", "action", "reviewer_id", "justification", "previous_values", "new_values", "created_at"}


def review_url(item_id: str, action: str) -> str:
    return f"/api/v1/dataset/review/{item_id}/{action}"


async def dataset_of(client: httpx.AsyncClient, account: Account, dataset_id: str) -> dict:
    return (await client.get(f"/api/v1/datasets/{dataset_id}", headers=account.headers)).json()


async def test_approve_reject_edit_and_history(client: httpx.AsyncClient, account: Account) -> None:
    dataset, items = await generated(client, account)
    first, second, third = items

    approved = await client.post(review_url(first["id"], "approve"), headers=account.headers, json={"reviewer_id": "user-123", "justification": "Item aprovado após revisão"})
    assert approved.status_code == 200, approved.text
    review = approved.json()
    assert REVIEW_FIELDS <= set(review) and review["action"] == "approve" and review["dataset_item_id"] == first["id"]
    assert (review["reviewer_id"], review["justification"], review["previous_values"], review["new_values"]) == ("user-123", "Item aprovado após revisão", None, None)
    # The authenticated user is recorded whatever label the client sends.
    assert review["reviewed_by"] == account.user_id

    # Without a body (or a reviewer_id), the reviewer is the authenticated user.
    rejected = await client.post(review_url(second["id"], "reject"), headers=account.headers, json={"justification": "Resposta incorreta"})
    assert rejected.status_code == 200 and rejected.json()["reviewer_id"] == account.email and rejected.json()["action"] == "reject"

    counters = await dataset_of(client, account, dataset["id"])
    assert (counters["total_items"], counters["approved_items"], counters["rejected_items"], counters["pending_items"]) == (3, 1, 1, 1)
    assert [item["id"] for item in await pending(client, account, dataset["id"])] == [third["id"]]

    # Approving again records the action and counts nothing twice; a rejected item may be approved.
    assert (await client.post(review_url(first["id"], "approve"), headers=account.headers)).status_code == 200
    assert (await client.post(review_url(second["id"], "approve"), headers=account.headers, json={})).status_code == 200
    counters = await dataset_of(client, account, dataset["id"])
    assert (counters["approved_items"], counters["rejected_items"], counters["pending_items"]) == (2, 0, 1)

    edit = {"reviewer_id": "user-456", "instruction": "Instrução editada", "ideal_response": "O cartão é aceito em todos os estabelecimentos credenciados da rede.", "justification": "Correção"}
    edited = await client.post(review_url(first["id"], "edit"), headers=account.headers, json=edit)
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["action"] == "edit" and body["reviewer_id"] == "user-456" and body["justification"] == "Correção"
    assert body["previous_values"] == {"instruction": first["instruction"], "ideal_response": first["ideal_response"]}
    assert body["new_values"] == {"instruction": "Instrução editada", "ideal_response": edit["ideal_response"]}

    history = (await client.get(review_url(first["id"], "history"), headers=account.headers)).json()
    assert [h["action"] for h in history] == ["approve", "approve", "edit"]
    assert [h["created_at"] for h in history] == sorted(h["created_at"] for h in history)
    assert (await client.get(review_url(third["id"], "history"), headers=account.headers)).json() == []


async def test_an_edit_is_scored_again(client: httpx.AsyncClient, account: Account) -> None:
    _, items = await generated(client, account, await source(client, account, PARAGRAPHS[:1]))
    [item] = items
    worse = await client.post(review_url(item["id"], "edit"), headers=account.headers, json={"bad_response": item["ideal_response"]})
    assert worse.status_code == 200, worse.text
    [again] = await pending(client, account, item["dataset_id"])
    assert again["bad_response"] == item["ideal_response"] and again["quality_flags"]["distinct_responses_ok"] is False and again["quality_score"] < item["quality_score"]


async def test_pending_queue_filters_and_pages(client: httpx.AsyncClient, account: Account) -> None:
    first, _ = await generated(client, account)
    second, _ = await generated(client, account)
    everything = await client.get("/api/v1/dataset/review/pending", headers=account.headers)
    assert everything.headers["X-Total-Count"] == "6" and {i["dataset_id"] for i in everything.json()} == {first["id"], second["id"]}
    page = await client.get("/api/v1/dataset/review/pending", headers=account.headers, params={"dataset_id": second["id"], "limit": "2", "offset": "1"})
    assert page.headers["X-Total-Count"] == "3" and len(page.json()) == 2 and {i["dataset_id"] for i in page.json()} == {second["id"]}
    created = [i["created_at"] for i in everything.json()]
    assert created == sorted(created)
    assert (await client.get("/api/v1/dataset/review/pending", headers=account.headers, params={"dataset_id": str(uuid.uuid4())})).json() == []
    assert_envelope(await client.get("/api/v1/dataset/review/pending", headers=account.headers, params={"dataset_id": "nope"}), 422)


async def test_counters_stay_exact_under_concurrent_reviews(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    paragraphs = [f"{PARAGRAPHS[i % 3]} Cláusula {i} do regulamento de benefícios." for i in range(12)]
    dataset, items = await generated(client, account, await source(client, account, paragraphs))
    assert len(items) == 12
    calls = []
    for n, item in enumerate(items):
        # Several reviewers at once on every item: approvals and rejections racing.
        for k in range(3):
            if (n + k) % 2:
                calls.append(client.post(review_url(item["id"], "approve"), headers=account.headers))
            else:
                calls.append(client.post(review_url(item["id"], "reject"), headers=account.headers, json={"justification": f"r{k}"}))
    responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:3]

    with database.session() as session:
        counted = dict(session.execute(select(InstructionItem.review_status, func.count()).where(InstructionItem.dataset_id == uuid.UUID(dataset["id"])).group_by(InstructionItem.review_status)).all())
    final = await dataset_of(client, account, dataset["id"])
    assert final["approved_items"] == counted.get("approved", 0) and final["rejected_items"] == counted.get("rejected", 0) and final["pending_items"] == counted.get("pending", 0) == 0
    assert final["approved_items"] + final["rejected_items"] == final["total_items"] == 12
    # Every decision is in the history, one action per request.
    histories = await asyncio.gather(*(client.get(review_url(item["id"], "history"), headers=account.headers) for item in items))
    assert sum(len(h.json()) for h in histories) == 36


async def test_bad_review_input(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    _, items = await generated(client, account, await source(client, account, PARAGRAPHS[:1]))
    item_id = items[0]["id"]

    async def post(action: str, body: object, status: int, headers: dict | None = None) -> dict:
        return assert_envelope(await client.post(review_url(item_id, action), headers=headers or account.headers, json=body), status)

    # A rejection needs a justification; blank does not count.
    assert "justification" in (await post("reject", {}, 422))["details"]
    assert "justification" in (await post("reject", {"reviewer_id": "user-1", "justification": "   "}, 422))["details"]
    assert "justification" in (await post("reject", {"justification": None}, 422))["details"]
    assert_envelope(await client.post(review_url(item_id, "reject"), headers=account.headers), 422)  # no body at all
    # An edit changes at least one field; a reviewer or a justification alone is not an edit.
    await post("edit", {}, 422)
    await post("edit", {"reviewer_id": "user-1", "justification": "nada"}, 422)
    await post("edit", {"instruction": None}, 422)
    assert "instruction" in (await post("edit", {"instruction": ""}, 422))["details"]
    assert "reviewer_id" in (await post("approve", {"reviewer_id": "x" * 101}, 422))["details"]
    assert "unknown" in (await post("approve", {"unknown": 1}, 422))["details"]
    assert_envelope(await client.post(review_url(item_id, "approve"), headers={**account.headers, "Content-Type": "application/json"}, content=b"{"), 400)
    for action, body in (("approve", {}), ("reject", {"justification": "j"}), ("edit", {"instruction": "i"})):
        assert_envelope(await client.post(review_url(str(uuid.uuid4()), action), headers=account.headers, json=body), 404)
        assert_envelope(await client.post(review_url(item_id, action), headers=other_account.headers, json=body), 404)
    assert_envelope(await client.get(review_url(item_id, "history"), headers=other_account.headers), 404)
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await client.post(review_url(item_id, "approve"), headers=viewer.headers), 403)
    assert (await client.get(review_url(item_id, "history"), headers=viewer.headers)).status_code == 200
    # Nothing above changed the item.
    assert (await client.get(review_url(item_id, "history"), headers=account.headers)).json() == []
    assert [i["id"] for i in await pending(client, account, items[0]["dataset_id"])] == [item_id]


async def test_a_datasets_items_of_every_status(client: httpx.AsyncClient, account: Account) -> None:
    dataset, items = await generated(client, account)
    url = f"/api/v1/datasets/{dataset['id']}/items"
    await client.post(review_url(items[0]["id"], "approve"), headers=account.headers, json={})
    await client.post(review_url(items[1]["id"], "reject"), headers=account.headers, json={"justification": "vaga"})
    every = await client.get(url, headers=account.headers)
    assert every.status_code == 200 and every.headers["X-Total-Count"] == "3"
    assert sorted(item["review_status"] for item in every.json()) == ["approved", "pending", "rejected"]
    rejected = (await client.get(url, headers=account.headers, params={"review_status": "rejected"})).json()
    assert [item["id"] for item in rejected] == [items[1]["id"]]
    best = max(item["quality_score"] for item in every.json())
    at_best = (await client.get(url, headers=account.headers, params={"min_quality_score": best})).json()
    assert {item["id"] for item in at_best} == {item["id"] for item in every.json() if item["quality_score"] >= best}
    assert_envelope(await client.get(url, headers=account.headers, params={"review_status": "maybe"}), 422)
    assert_envelope(await client.get(url, headers=account.headers, params={"min_quality_score": 2}), 422)


async def test_change_archive_and_restore_an_instruction_dataset(client: httpx.AsyncClient, account: Account) -> None:
    dataset, _ = await generated(client, account)
    url = f"/api/v1/datasets/{dataset['id']}"
    renamed = await client.patch(url, headers=account.headers, json={"name": "Benefícios", "generation_config": {"model": "other-model", "temperature": 0.1}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Benefícios" and renamed.json()["version"] == dataset["version"] + 1
    assert renamed.json()["generation_config"]["model"] == "other-model" and renamed.json()["status"] == "ready"

    archived = (await client.patch(url, headers=account.headers, json={"archived": True})).json()
    assert archived["status"] == "archived" and archived["version"] == dataset["version"] + 1
    refused = await client.post("/api/v1/datasets/generate", headers=account.headers, json={"dataset_id": dataset["id"]})
    assert refused.status_code in (409, 422), refused.text
    assert (await client.patch(url, headers=account.headers, json={"archived": False})).json()["status"] == "ready"

    for body in ({"name": ""}, {"archived": "yes"}, {"status": "ready"}, {"template_id": "not-a-uuid"}):
        assert_envelope(await client.patch(url, headers=account.headers, json=body), 422)
    other_domain = await source(client, account, PARAGRAPHS[:1])
    assert_envelope(await client.patch(url, headers=account.headers, json={"template_id": other_domain.template_id}), 422)
    assert (await dataset_of(client, account, dataset["id"]))["template_id"] == dataset["template_id"]
