"""Instruction datasets and their generation over HTTP, against a local provider server
speaking OpenAI's chat completions: the seed's shapes, items with quality checks, retries
on 429 (honouring Retry-After), 5xx, timeouts and malformed answers, failures recorded
with their reason, re-runs without duplicates, provider keys, and bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Account, add_member, assert_envelope, hourly_csv
from tests.forge.instruction_helpers import PARAGRAPHS, create_dataset, finished, generated, pending, source, start
from tests.forge.provider_server import ProviderServer, Reply, hang, missing_fields, not_json, ok, rate_limited, server_error, unauthorized
from vur.core.db import Database
from vur.forge.models import InstructionItem, ProviderKey
from vur.forge.providers import MalformedAnswer, parse_item
from vur.settings import Settings

pytestmark = pytest.mark.anyio

SEED_DATASET_FIELDS = {
    "id", "domain_id", "template_id", "use_case", "name", "description", "provider", "target_model_family", "status", "version",
    "generation_config", "segment_filter", "total_items", "approved_items", "rejected_items", "pending_items", "created_at", "updated_at",
}  # fmt: skip
SEED_PENDING_FIELDS = {"id", "dataset_id", "dataset_name", "instruction", "input_text", "ideal_response", "bad_response", "explanation", "quality_score", "quality_flags", "created_at"}


async def test_create_list_and_read_as_the_seed_shows(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    src = await source(client, account)
    body = {
        "domain_id": src.domain_id,
        "template_id": src.template_id,
        "use_case": "chat-training",
        "name": "Dataset Chat VR 2024",
        "description": "Dataset para treinamento de chat",
        "provider": "openai",
        "target_model_family": "llama",
        "generation_config": {"model": "gpt-4", "temperature": 0.7, "max_tokens": 1000},
        "segment_filter": {"segment_type": "paragraph", "domain_id": src.domain_id},
    }
    response = await client.post("/api/v1/datasets", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert SEED_DATASET_FIELDS <= set(dataset) and dataset["kind"] == "instruction"
    assert {k: dataset[k] for k in body} == body
    assert dataset["status"] == "draft" and dataset["version"] == 1
    assert [dataset[k] for k in ("total_items", "approved_items", "rejected_items", "pending_items")] == [0, 0, 0, 0]
    assert (await client.get(f"/api/v1/datasets/{dataset['id']}", headers=account.headers)).json() == dataset

    # One listing for both kinds, each in its own shape; the kind and domain filters work.
    with hourly_csv(tmp_path / "t.csv", hours=48).open("rb") as handle:
        tabular = (await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("t.csv", handle, "text/csv")})).json()
    listed = await client.get("/api/v1/datasets", headers=account.headers)
    assert listed.headers["X-Total-Count"] == "2"
    by_id = {row["id"]: row for row in listed.json()}
    assert by_id[dataset["id"]] == dataset
    assert by_id[tabular["dataset_id"]]["kind"] == "tabular" and "columns" in by_id[tabular["dataset_id"]] and "provider" not in by_id[tabular["dataset_id"]]
    only = await client.get("/api/v1/datasets", headers=account.headers, params={"kind": "instruction"})
    assert [row["id"] for row in only.json()] == [dataset["id"]]
    assert [row["id"] for row in (await client.get("/api/v1/datasets", headers=account.headers, params={"domain_id": src.domain_id})).json()] == [dataset["id"]]
    assert (await client.get("/api/v1/datasets", headers=account.headers, params={"domain_id": str(uuid.uuid4())})).json() == []

    # Tabular routes refuse an instruction dataset with a clear 4xx, not a 500.
    for path in ("preview", "statistics", "download"):
        assert_envelope(await client.get(f"/api/v1/datasets/{dataset['id']}/{path}", headers=account.headers), 422)


async def test_generation_stores_scored_items_and_reports(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src)
    model = dataset["generation_config"]["model"]
    accepted = await start(client, account, dataset["id"], batch_size=2)
    assert accepted["status"] == "generating" and accepted["items_created"] == 0 and set(accepted) == {"status", "items_created", "job_id"}

    done = await finished(client, account, dataset["id"])
    assert done["status"] == "ready" and done["job"]["status"] == "succeeded" and done["job"]["type"] == "forge.generate"
    assert done["job"]["result"] == {"dataset_id": dataset["id"], "items_created": 3, "failed": 0}
    assert (done["total_items"], done["pending_items"], done["approved_items"], done["rejected_items"]) == (3, 3, 0, 0)
    assert done["generation_report"]["items_created"] == 3 and done["generation_report"]["failures"] == []

    items = await pending(client, account, dataset["id"])
    assert len(items) == 3 and SEED_PENDING_FIELDS <= set(items[0])
    assert {item["segment_id"] for item in items} == set(src.segment_ids)
    assert all(item["dataset_name"] == "Dataset Chat" and item["review_status"] == "pending" for item in items)
    for item in items:
        assert item["quality_flags"] == {"length_ok": True, "distinct_responses_ok": True, "grounded_ok": True, "unique_ok": True, "language_ok": True}, item
        assert item["quality_score"] == 1.0

    # What the provider received: the settings' key, our JSON contract, the template filled in.
    calls = provider_server.calls_for(model)
    assert len(calls) == 3
    assert {call.authorization for call in calls} == {"Bearer sk-test-settings-key"}
    assert all(call.body["response_format"] == {"type": "json_object"} and call.body["temperature"] == 0.2 for call in calls)
    assert sorted(call.prompt for call in calls) == sorted(f"Contexto: {p}" for p in PARAGRAPHS)
    assert "ideal_response" in calls[0].body["messages"][0]["content"] and calls[0].body["messages"][0]["content"].startswith("Você cria dados de treino.")


async def test_reruns_add_only_missing_segments(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src)
    await start(client, account, dataset["id"], max_items=2)
    assert (await finished(client, account, dataset["id"]))["total_items"] == 2
    await start(client, account, dataset["id"], max_items=10)
    done = await finished(client, account, dataset["id"])
    assert done["total_items"] == 3 and done["job"]["result"]["items_created"] == 1
    assert len(provider_server.calls_for(dataset["generation_config"]["model"])) == 3
    # Every segment has its item: nothing is left to generate from, even when named.
    again = await client.post("/api/v1/datasets/generate", headers=account.headers, json={"dataset_id": dataset["id"], "segment_ids": src.segment_ids[:1]})
    assert "segments" in assert_envelope(again, 422)["details"]
    assert len(await pending(client, account, dataset["id"])) == 3


async def test_429_with_retry_after_and_500_are_retried(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer, database: Database) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src)
    model = dataset["generation_config"]["model"]
    provider_server.script(model, rate_limited(0.6), server_error(), ok())
    await start(client, account, dataset["id"], segment_ids=src.segment_ids[:1])
    done = await finished(client, account, dataset["id"])
    assert done["job"]["status"] == "succeeded" and done["total_items"] == 1
    calls = provider_server.calls_for(model)
    assert len(calls) == 3
    # Retry-After (0.6 s) was waited, not the short backoff of the test settings (0.05 s).
    assert calls[1].at - calls[0].at >= 0.55
    assert calls[2].at - calls[1].at < 0.5
    with database.session() as session:
        item = session.scalars(select(InstructionItem).where(InstructionItem.dataset_id == uuid.UUID(dataset["id"]))).one()
        assert item.generation_meta["attempts"] == 3 and item.generation_meta["provider"] == "openai" and item.generation_meta["model"] == model


def test_an_answer_nested_past_the_parsers_limit_is_malformed() -> None:
    """A provider is outside our control: json.loads would run out of stack on this."""
    with pytest.raises(MalformedAnswer, match="not JSON"):
        parse_item("[" * 10_000 + "]" * 10_000)


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ([hang(5)], "no answer within 1 s (after 3 attempts)"),
        ([not_json()], "malformed answer: the answer is not JSON"),
        ([missing_fields()], "malformed answer: missing or blank: ['ideal_response', 'bad_response']"),
        ([server_error()], "provider error 500 (after 3 attempts)"),
    ],
)
async def test_an_answer_that_never_comes_right_is_a_failure_not_an_item(
    client: httpx.AsyncClient, account: Account, provider_server: ProviderServer, script: list, reason: str
) -> None:
    src = await source(client, account, PARAGRAPHS[:1])
    dataset = await create_dataset(client, account, src)
    model = dataset["generation_config"]["model"]
    provider_server.script(model, *script)
    await start(client, account, dataset["id"])
    done = await finished(client, account, dataset["id"])
    assert len(provider_server.calls_for(model)) == 3  # the first try and two retries
    # Nothing came of the run: the job fails with the reason, the dataset is back to draft.
    assert done["job"]["status"] == "failed" and reason in done["job"]["error"], done["job"]
    assert done["status"] == "draft" and done["total_items"] == 0 and await pending(client, account, dataset["id"]) == []
    [failure] = done["generation_report"]["failures"]
    assert failure["segment_id"] == src.segment_ids[0] and reason in failure["reason"]


async def test_a_malformed_answer_is_retried_and_a_fenced_one_accepted(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    src = await source(client, account, PARAGRAPHS[:1])
    dataset = await create_dataset(client, account, src)
    model = dataset["generation_config"]["model"]
    # Some servers wrap the JSON in a Markdown fence even in JSON mode: that is accepted.
    fenced = "```json\n" + json.dumps({"instruction": "Explique o benefício.", "ideal_response": "O cartão é aceito na rede credenciada do país.", "bad_response": "Não."}) + "\n```"
    provider_server.script(model, not_json(), missing_fields(), Reply(content=fenced))
    await start(client, account, dataset["id"])
    done = await finished(client, account, dataset["id"])
    assert done["job"]["status"] == "succeeded" and done["total_items"] == 1 and len(provider_server.calls_for(model)) == 3
    [item] = await pending(client, account, dataset["id"])
    assert (item["instruction"], item["input_text"], item["explanation"]) == ("Explique o benefício.", "", "")


async def test_unauthorized_stops_the_run_with_the_reason(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src)
    model = dataset["generation_config"]["model"]
    provider_server.script(model, unauthorized())
    await start(client, account, dataset["id"])
    done = await finished(client, account, dataset["id"])
    assert done["job"]["status"] == "failed" and "refused the request (401): Incorrect API key provided" in done["job"]["error"]
    assert done["generation_report"]["error"] == done["job"]["error"].split(": ", 1)[1]
    assert done["status"] == "draft" and len(provider_server.calls_for(model)) <= 3  # not retried


async def test_quality_flags_catch_weak_items(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    # The same paragraph in two documents: the second item is a near-duplicate of the first.
    src = await source(client, account, PARAGRAPHS[:1])
    await source(client, account, PARAGRAPHS[:1], domain_id=src.domain_id)
    _, items = await generated(client, account, src)
    assert sorted(item["quality_flags"]["unique_ok"] for item in items) == [False, True]
    assert sorted(item["quality_score"] for item in items) == [0.85, 1.0]

    # Ideal = bad, not grounded in the segment, in English for a Portuguese text, too short.
    weak = {"instruction": "Say it.", "ideal_response": "The moon is made of cheese and it is far away", "bad_response": "the moon is made of cheese and it is far away"}
    dataset = await create_dataset(client, account, src)
    provider_server.script(dataset["generation_config"]["model"], ok(**weak))
    await start(client, account, dataset["id"], segment_ids=src.segment_ids)
    done = await finished(client, account, dataset["id"])
    [item] = await pending(client, account, done["id"])
    assert item["quality_flags"] == {"length_ok": False, "distinct_responses_ok": False, "grounded_ok": False, "unique_ok": True, "language_ok": False}
    assert item["quality_score"] == 0.15


async def test_openai_compatible_server_by_base_url(client: httpx.AsyncClient, account: Account) -> None:
    with ProviderServer() as local:
        src = await source(client, account)
        config = {"base_url": local.base_url, "model": "llama3.1:8b", "max_tokens": 800}
        done, items = await generated(client, account, src, provider="openai_compatible", generation_config=config)
        assert done["provider"] == "openai_compatible" and done["generation_config"] == config and len(items) == 3
        assert len(local.calls) == 3 and {call.model for call in local.calls} == {"llama3.1:8b"} and local.calls[0].body["max_tokens"] == 800
        assert {call.authorization for call in local.calls} == {"Bearer no-key"}


async def test_workspace_provider_keys(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer, database: Database) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src, provider="together")
    # No key for Together, neither the workspace's nor the server's: a clear 422.
    body = assert_envelope(await client.post("/api/v1/datasets/generate", headers=account.headers, json={"dataset_id": dataset["id"]}), 422)
    assert "provider-keys" in body["details"]["provider"]

    secret = f"tgp-{uuid.uuid4().hex}"
    stored = await client.post("/api/v1/provider-keys", headers=account.headers, json={"provider": "together", "api_key": secret})
    assert stored.status_code == 201, stored.text
    assert stored.json()["last4"] == secret[-4:] and secret not in stored.text
    listed = await client.get("/api/v1/provider-keys", headers=account.headers)
    assert [row["provider"] for row in listed.json()] == ["together"] and secret not in listed.text
    with database.session() as session:
        row = session.scalars(select(ProviderKey).where(ProviderKey.workspace_id == uuid.UUID(account.workspace_id))).one()
        assert secret not in row.ciphertext

    await start(client, account, dataset["id"])
    assert (await finished(client, account, dataset["id"]))["total_items"] == 3
    assert {call.authorization for call in provider_server.calls_for(dataset["generation_config"]["model"])} == {f"Bearer {secret}"}

    # A member may not manage keys; the admin may replace and forget them.
    member = await add_member(client, account, "member")
    assert_envelope(await client.post("/api/v1/provider-keys", headers=member.headers, json={"provider": "openai", "api_key": "sk-member-key"}), 403)
    replaced = await client.post("/api/v1/provider-keys", headers=account.headers, json={"provider": "together", "api_key": "tgp-second-key-9876"})
    assert replaced.json()["last4"] == "9876" and len((await client.get("/api/v1/provider-keys", headers=account.headers)).json()) == 1
    assert (await client.delete("/api/v1/provider-keys/together", headers=account.headers)).status_code == 204
    assert_envelope(await client.delete("/api/v1/provider-keys/together", headers=account.headers), 404)
    assert_envelope(await client.delete("/api/v1/provider-keys/anthropic", headers=account.headers), 422)
    assert_envelope(await client.post("/api/v1/provider-keys", headers=account.headers, json={"provider": "openai", "api_key": "has spaces in it"}), 422)


async def test_generation_cannot_start_twice(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src)
    provider_server.script(dataset["generation_config"]["model"], ok(delay=0.5))
    await start(client, account, dataset["id"])
    busy = await client.post("/api/v1/datasets/generate", headers=account.headers, json={"dataset_id": dataset["id"]})
    assert assert_envelope(busy, 409)["details"] == {"status": "generation starts only from draft or ready"}
    assert (await finished(client, account, dataset["id"]))["total_items"] == 3


async def test_cancelling_the_job_leaves_the_items_stored(client: httpx.AsyncClient, account: Account, provider_server: ProviderServer) -> None:
    paragraphs = [f"{p} Parágrafo número {i} do regulamento." for i in range(40) for p in PARAGRAPHS[:1]]
    src = await source(client, account, paragraphs)
    dataset = await create_dataset(client, account, src)
    provider_server.script(dataset["generation_config"]["model"], ok(delay=0.3))
    accepted = await start(client, account, dataset["id"], batch_size=4)
    while (await client.get(f"/api/v1/datasets/{dataset['id']}", headers=account.headers)).json()["total_items"] == 0:
        await asyncio.sleep(0.05)
    assert (await client.post(f"/api/v1/jobs/{accepted['job_id']}/cancel", headers=account.headers)).status_code in (200, 202)
    done = await finished(client, account, dataset["id"])
    assert done["job"]["status"] == "cancelled" and done["status"] == "ready"
    assert 0 < done["total_items"] < 40 and done["total_items"] == done["pending_items"] == len(await pending(client, account, dataset["id"]))
    assert done["generation_report"]["error"] == "Cancelled by request"


async def test_bad_input(client: httpx.AsyncClient, account: Account, settings: Settings, tmp_path: Path) -> None:
    src = await source(client, account)
    base = {"domain_id": src.domain_id, "template_id": src.template_id, "name": "D", "provider": "openai"}

    async def create(body: object, status: int) -> dict:
        return assert_envelope(await client.post("/api/v1/datasets", headers=account.headers, json=body), status)

    assert_envelope(await client.post("/api/v1/datasets", headers={**account.headers, "Content-Type": "application/json"}, content=b'{"name": '), 400)
    assert "provider" in (await create({**base, "provider": "anthropic"}, 422))["details"]
    assert "name" in (await create({**base, "name": ""}, 422))["details"]
    assert "name" in (await create({**base, "name": 12}, 422))["details"]
    assert "generation_config.temperature" in (await create({**base, "generation_config": {"temperature": "hot"}}, 422))["details"]
    assert "generation_config.seed" in (await create({**base, "generation_config": {"seed": 1}}, 422))["details"]
    assert "segment_filter.segment_type" in (await create({**base, "segment_filter": {"segment_type": "tweet"}}, 422))["details"]
    await create({**base, "provider": "openai_compatible"}, 422)  # no base_url nor model
    await create({**base, "generation_config": {"base_url": "http://localhost:11434/v1"}}, 422)  # base_url is only for openai_compatible
    await create({**base, "provider": "openai_compatible", "generation_config": {"model": "m", "base_url": "file:///etc/passwd"}}, 422)
    # The server calls that URL: private and metadata hosts are refused unless the operator
    # listed them (the tests list 127.0.0.1); metadata stays refused even when listed.
    compatible = {**base, "provider": "openai_compatible"}
    for url in ("http://10.0.0.7:8000/v1", "http://[::1]:11434/v1", "http://169.254.169.254/latest", "http://metadata.google.internal/v1"):
        refused = await create({**compatible, "generation_config": {"model": "m", "base_url": url}}, 422)
        assert "only public addresses" in refused["details"]["generation_config.base_url"] or "metadata" in refused["details"]["generation_config.base_url"]
    public = await client.post("/api/v1/datasets", headers=account.headers, json={**compatible, "generation_config": {"model": "m", "base_url": "https://93.184.216.34/v1"}})
    listed = (await client.post("/api/v1/datasets", headers=account.headers, json={**compatible, "generation_config": {"model": "m", "base_url": "http://127.0.0.1:9/v1"}})).json()
    moved = await client.patch(f"/api/v1/datasets/{listed['id']}", headers=account.headers, json={"generation_config": {"model": "m", "base_url": "http://192.168.1.20/v1"}})
    assert "VUR_FORGE_COMPATIBLE_ALLOWED_HOSTS" in assert_envelope(moved, 422)["details"]["generation_config.base_url"]
    assert (await client.get(f"/api/v1/datasets/{listed['id']}", headers=account.headers)).json()["generation_config"]["base_url"] == "http://127.0.0.1:9/v1"
    assert public.status_code == 201 and public.json()["generation_config"]["base_url"] == "https://93.184.216.34/v1"
    await create({**base, "domain_id": str(uuid.uuid4())}, 404)
    await create({**base, "template_id": str(uuid.uuid4())}, 404)
    other_domain = (await client.post("/api/v1/domains", headers=account.headers, json={"name": "Outro", "slug": f"o-{uuid.uuid4().hex[:6]}"})).json()["id"]
    assert "template_id" in (await create({**base, "domain_id": other_domain}, 422))["details"]
    with_variables = await client.post(
        "/api/v1/templates", headers=account.headers, json={"domain_id": src.domain_id, "name": "T", "system_prompt": "S", "user_prompt_template": "{content} em tom {tone}", "variables": ["tone"]}
    )
    assert "generation_config.variables" in (await create({**base, "template_id": with_variables.json()["id"]}, 422))["details"]
    assert_envelope(await client.post("/api/v1/datasets", headers=account.headers, json={**base, "description": "x" * (settings.max_body_bytes + 10)}), 413)
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await client.post("/api/v1/datasets", headers=viewer.headers, json=base), 403)

    dataset = await create_dataset(client, account, src)

    async def generate(body: object, status: int) -> dict:
        return assert_envelope(await client.post("/api/v1/datasets/generate", headers=account.headers, json=body), status)

    for bad in ({"max_items": 0}, {"max_items": 10_001}, {"batch_size": 0}, {"batch_size": 101}, {"max_items": "many"}, {"segment_ids": []}, {"segment_ids": ["x"]}, {"extra": 1}):
        [field] = bad
        assert any(key.startswith(field) for key in (await generate({"dataset_id": dataset["id"], **bad}, 422))["details"]), bad
    await generate({}, 422)
    await generate({"dataset_id": str(uuid.uuid4())}, 404)
    assert "segment_ids" in (await generate({"dataset_id": dataset["id"], "segment_ids": [str(uuid.uuid4())]}, 422))["details"]
    no_template = await create_dataset(client, account, src, template_id=None)
    assert "template_id" in (await generate({"dataset_id": no_template["id"]}, 422))["details"]
    with hourly_csv(tmp_path / "t.csv", hours=48).open("rb") as handle:
        tabular = (await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("t.csv", handle, "text/csv")})).json()
    assert (await generate({"dataset_id": tabular["dataset_id"]}, 422))["details"] == {"kind": "tabular"}
    empty_filter = await create_dataset(client, account, src, segment_filter={"segment_type": "faq"})
    assert "segments" in (await generate({"dataset_id": empty_filter["id"]}, 422))["details"]
    # Refusals leave the datasets as they were.
    for refused in (dataset, no_template, empty_filter):
        again = (await client.get(f"/api/v1/datasets/{refused['id']}", headers=account.headers)).json()
        assert again["status"] == "draft" and again["job_id"] is None


async def test_another_workspace_cannot_generate_for_mine(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    src = await source(client, account)
    dataset = await create_dataset(client, account, src)
    assert_envelope(await client.post("/api/v1/datasets/generate", headers=other_account.headers, json={"dataset_id": dataset["id"]}), 404)
    body = {"domain_id": src.domain_id, "template_id": src.template_id, "name": "D", "provider": "openai"}
    assert_envelope(await client.post("/api/v1/datasets", headers=other_account.headers, json=body), 404)
    mine = await source(client, other_account)
    theirs = await create_dataset(client, other_account, mine)
    # Another workspace's segments are unknown ones.
    refused = await client.post("/api/v1/datasets/generate", headers=other_account.headers, json={"dataset_id": theirs["id"], "segment_ids": src.segment_ids})
    assert "segment_ids" in assert_envelope(refused, 422)["details"]
    assert (await client.get("/api/v1/dataset/review/pending", headers=other_account.headers)).json() == []
