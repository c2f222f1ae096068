"""Exports of instruction datasets: layouts, formats, filters, signed downloads, bad input."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv
from tests.forge.instruction_data import SYSTEM_PROMPT, Item, instruction_dataset
from vur.core.db import Database
from vur.registry import bundles
from vur.settings import Settings

pytestmark = pytest.mark.anyio

ITEMS = [
    Item(instruction="Resuma o contrato", input_text="Cláusula 1: o prazo é de 30 dias.", ideal_response="Prazo de 30 dias.", bad_response="Não há prazo.", quality_score=0.95),
    Item(instruction="Low quality", quality_score=0.5),
    Item(instruction="Still pending", review_status="pending"),
    Item(instruction="Was rejected", review_status="rejected"),
]


async def export(client: httpx.AsyncClient, account: Account, dataset_id: str, **body: object) -> httpx.Response:
    return await client.post(f"/api/v1/datasets/{dataset_id}/export", headers=account.headers, json=body)


async def fetch(download_url: str) -> httpx.Response:
    # The signed URL is the credential: no token.
    async with httpx.AsyncClient(timeout=10) as anonymous:
        return await anonymous.get(download_url)


async def test_chat_jsonl_export_of_the_approved_items_above_a_score(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    dataset_id = instruction_dataset(database, account.workspace_id, ITEMS)
    response = await export(client, account, dataset_id, format="jsonl", approved_only=True, filters={"min_quality_score": 0.8})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["export_version"] == 1 and body["format"] == "jsonl" and body["layout"] == "chat" and body["status"] == "completed"
    assert body["item_count"] == 1
    assert body["filters_applied"] == {"approved_only": True, "min_quality_score": 0.8}
    assert body["s3_key"] == f"exports/{account.workspace_id.replace('-', '')}/{dataset_id.replace('-', '')}/v1/dataset.jsonl"
    downloaded = await fetch(body["download_url"])
    assert downloaded.status_code == 200 and downloaded.headers["content-type"].startswith("application/jsonl")
    lines = downloaded.text.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "Resuma o contrato\n\nCláusula 1: o prazo é de 30 dias."},
                {"role": "assistant", "content": "Prazo de 30 dias."},
            ]
        }
    ]
    assert body["size_bytes"] == len(downloaded.content)

    # approved_only=false adds the pending items, never the rejected ones; each export is a new version.
    second = (await export(client, account, dataset_id, approved_only=False)).json()
    assert second["export_version"] == 2 and second["item_count"] == 3
    listed = await client.get(f"/api/v1/datasets/{dataset_id}/exports", headers=account.headers)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "2"
    assert [e["export_version"] for e in listed.json()] == [2, 1]
    assert all(e["download_url"] is None for e in listed.json())


async def test_preference_pairs_as_json_and_csv_with_formulas_neutralised(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    items = [Item(), Item(instruction="=HYPERLINK(\"http://evil\")", ideal_response="+1", bad_response="@SUM(A1)"), Item(instruction="No bad answer", bad_response="")]
    dataset_id = instruction_dataset(database, account.workspace_id, items)
    as_json = (await export(client, account, dataset_id, format="json", layout="preference")).json()
    assert as_json["item_count"] == 2  # the item without a bad response makes no pair
    records = json.loads((await fetch(as_json["download_url"])).text)
    assert records[0] == {
        "input": {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Qual é a capital do Brasil?"}]},
        "preferred_output": [{"role": "assistant", "content": "A capital do Brasil é Brasília."}],
        "non_preferred_output": [{"role": "assistant", "content": "Rio de Janeiro"}],
    }
    as_csv = (await export(client, account, dataset_id, format="csv", layout="preference")).json()
    rows = list(csv.reader(io.StringIO((await fetch(as_csv["download_url"])).text)))
    assert rows[0] == ["system", "user", "chosen", "rejected"]
    assert rows[2] == ["", "'=HYPERLINK(\"http://evil\")", "'+1", "'@SUM(A1)"]
    chat_csv = (await export(client, account, dataset_id, format="csv")).json()
    assert list(csv.reader(io.StringIO((await fetch(chat_csv["download_url"])).text)))[0] == ["system", "user", "assistant"]


async def test_an_empty_selection_is_422_and_writes_nothing(client: httpx.AsyncClient, account: Account, database: Database, settings: Settings) -> None:
    dataset_id = instruction_dataset(database, account.workspace_id, [Item(review_status="pending"), Item(quality_score=0.1)])
    response = await export(client, account, dataset_id, filters={"min_quality_score": 0.5})
    body = assert_envelope(response, 422)
    assert "Nothing to export" in body["error"]
    assert (await client.get(f"/api/v1/datasets/{dataset_id}/exports", headers=account.headers)).json() == []
    assert not (settings.artifacts_dir / "exports" / account.workspace_id.replace("-", "") / dataset_id.replace("-", "")).exists()
    assert_envelope(await export(client, account, instruction_dataset(database, account.workspace_id, [Item(bad_response="")]), layout="preference"), 422)


async def test_a_tabular_dataset_has_no_exports_and_cannot_be_exported(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    with hourly_csv(tmp_path / "t.csv", hours=48).open("rb") as handle:
        dataset_id = (await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("t.csv", handle, "text/csv")})).json()["dataset_id"]
    assert_envelope(await export(client, account, dataset_id), 409)
    listed = await client.get(f"/api/v1/datasets/{dataset_id}/exports", headers=account.headers)
    assert listed.status_code == 200 and listed.json() == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"format": "xml"}, "format"),
        ({"layout": "completion"}, "layout"),
        ({"approved_only": "yes"}, "approved_only"),
        ({"filters": {"min_quality_score": 2}}, "filters.min_quality_score"),
        ({"filters": {"min_quality_score": "high"}}, "filters.min_quality_score"),
        ({"filters": {"drop_table": 1}}, "filters.drop_table"),
        ({"filters": []}, "filters"),
        ({"unknown": True}, "unknown"),
    ],
)
async def test_bad_export_bodies_are_422(client: httpx.AsyncClient, account: Account, database: Database, body: dict, field: str) -> None:
    dataset_id = instruction_dataset(database, account.workspace_id, [Item()])
    details = assert_envelope(await export(client, account, dataset_id, **body), 422)["details"]
    assert field in details, details
    assert (await client.get(f"/api/v1/datasets/{dataset_id}/exports", headers=account.headers)).json() == []


async def test_malformed_json_and_unknown_ids(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    dataset_id = instruction_dataset(database, account.workspace_id, [Item()])
    malformed = await client.post(f"/api/v1/datasets/{dataset_id}/export", headers={**account.headers, "Content-Type": "application/json"}, content=b"{format: jsonl")
    assert_envelope(malformed, 400)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_envelope(await export(client, account, unknown), 404)
    assert_envelope(await client.get(f"/api/v1/datasets/{unknown}/exports", headers=account.headers), 404)
    assert_envelope(await client.get(f"/api/v1/datasets/exports/{unknown}/download", headers=account.headers), 404)


async def test_signed_links_expire_and_cannot_be_forged(
    client: httpx.AsyncClient, account: Account, other_account: Account, database: Database, settings: Settings
) -> None:
    dataset_id = instruction_dataset(database, account.workspace_id, [Item()])
    export_id = (await export(client, account, dataset_id)).json()["id"]
    fresh = await client.get(f"/api/v1/datasets/exports/{export_id}/download", headers=account.headers)
    assert fresh.status_code == 200
    url = fresh.json()["download_url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert abs(int(query["expires"]) - time.time() - settings.forge_export_url_seconds) < 60
    assert (await fetch(url)).status_code == 200

    base = url.split("?")[0]
    forged = await fetch(f"{base}?expires={int(query['expires']) + 3600}&signature={query['signature']}")
    assert_envelope(forged, 403)
    assert_envelope(await fetch(f"{base}?signature={query['signature']}"), 403)
    past = int(time.time()) - 10
    expired_signature = bundles.sign(f"forge-export:{export_id}:{past}".encode(), settings.resolved_secret_key())
    assert_envelope(await fetch(f"{base}?expires={past}&signature={expired_signature}"), 410)
    # Without a signature the file needs a token of its workspace.
    assert_envelope(await fetch(base), 401)
    assert_envelope(await client.get(base, headers=other_account.headers), 404)
    assert_envelope(await client.get(f"/api/v1/datasets/exports/{export_id}/download", headers=other_account.headers), 404)
    assert (await client.get(base, headers=account.headers)).status_code == 200
