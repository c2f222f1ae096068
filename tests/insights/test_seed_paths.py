"""Seed 003's paths, as its React frontend calls them: integer ids, its shapes, uploads
judged by their bytes, no token when the deployment opts in, CORS for localhost:3000;
the incoming training webhook; and the outgoing webhooks a training fires."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from tests.conftest import Account, add_member, assert_envelope, wait_for_job
from tests.insights.test_machines import process_csv
from tests.webhooks.receiver import Receiver
from vur.app import create_app
from vur.settings import Settings
from vur.webhooks.signing import sign, verify

pytestmark = pytest.mark.anyio

SEED_ITEM = {"feature", "score_final", "importance_shap_mean_abs", "importance_native", "shap_norm", "native_norm", "direction"}
SEED_METRICS = {"r2", "mae", "rmse", "n_train", "n_test", "n_features", "date"}
WEBHOOK_SECRET = "machine-webhook-secret-for-tests"


async def seed_train(client: httpx.AsyncClient, headers: dict[str, str], number: int, content: bytes | None = None) -> httpx.Response:
    # Windows browsers label a CSV this way: the bytes decide, not the label.
    files = {"file": ("dados.csv", content or process_csv(), "application/vnd.ms-excel")}
    return await client.post("/train/", headers=headers, params={"machine_id": number, "target_column": "yield"}, files=files)


@pytest.fixture
async def open_client(settings: Settings, account: Account, live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """The same installation (database, data dir, job runner of the live server) through an
    app whose seed paths act as `account` when no token is sent."""
    opened = settings.model_copy(update={"machine_paths_user": account.email, "machine_webhook_secret": WEBHOOK_SECRET})
    app = create_app(opened)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vur", timeout=30) as http:
        yield http


async def test_the_frontends_whole_journey(client: httpx.AsyncClient, account: Account) -> None:
    created = await client.post("/machines/", headers=account.headers, json={"machine_name": "Prensa 01"})
    assert created.status_code == 200, created.text
    machine = created.json()
    assert set(machine) == {"machine_name", "id", "status", "model_id"}
    assert machine["machine_name"] == "Prensa 01" and machine["status"] == "created"
    assert isinstance(machine["id"], int) and isinstance(machine["model_id"], int)
    number = machine["id"]

    listed = (await client.get("/machines/", headers=account.headers)).json()
    assert [m["id"] for m in listed] == [number]
    assert (await client.get(f"/machines/{number}", headers=account.headers)).json() == machine

    started = await seed_train(client, account.headers, number)
    assert started.status_code == 200, started.text
    assert started.json()["message"] == "Training started"
    assert (await client.get(f"/machines/{number}", headers=account.headers)).json()["status"] == "training"
    assert (await wait_for_job(client, account, started.json()["job_id"]))["status"] == "succeeded"
    assert (await client.get(f"/machines/{number}", headers=account.headers)).json()["status"] == "completed"

    answer = await client.get("/ranking/", headers=account.headers, params={"machine_id": number})
    assert answer.status_code == 200, answer.text
    ranking, metrics = answer.json()["ranking"], answer.json()["metrics"]
    assert all(SEED_ITEM <= set(item) for item in ranking)
    scores = [item["score_final"] for item in ranking]
    assert scores == sorted(scores, reverse=True) and all(score >= 0 for score in scores)
    assert [item["feature"] for item in ranking[:2]] == ["pressure", "speed"]
    assert [item["direction"] for item in ranking[:2]] == ["positive", "negative"]
    for item in ranking:
        for key in ("importance_native", "shap_norm", "native_norm"):
            assert 0 <= item[key] <= 1, (key, item)
        assert all(math.isfinite(value) for value in item.values() if isinstance(value, float))
    assert SEED_METRICS <= set(metrics)
    assert datetime.fromisoformat(metrics["date"]).utcoffset() is not None
    assert metrics["n_train"] + metrics["n_test"] == 600 and metrics["n_features"] == 5

    deleted = await client.delete(f"/machines/{number}", headers=account.headers)
    assert deleted.status_code == 200 and deleted.json() == {"status": "deleted"}
    assert_envelope(await client.get(f"/machines/{number}", headers=account.headers), 404)
    assert (await client.get("/machines/", headers=account.headers)).json() == []


async def test_seed_paths_refuse_what_they_should(client: httpx.AsyncClient, account: Account) -> None:
    assert_envelope(await client.get("/ranking/", headers=account.headers), 422)  # no machine_id
    assert_envelope(await client.get("/ranking/", headers=account.headers, params={"machine_id": "abc"}), 422)
    assert_envelope(await client.get("/ranking/", headers=account.headers, params={"machine_id": 999}), 404)
    number = (await client.post("/machines/", headers=account.headers, json={"machine_name": "Torno"})).json()["id"]
    assert_envelope(await client.get("/ranking/", headers=account.headers, params={"machine_id": number}), 404)  # not trained
    assert_envelope(await client.delete("/machines/999", headers=account.headers), 404)
    # A number past what the databases store is no machine either (found by fuzzing: it was a 500).
    huge = 594951348246668745851797504
    assert_envelope(await client.get(f"/machines/{huge}", headers=account.headers), 404)
    assert_envelope(await client.delete(f"/machines/{huge}", headers=account.headers), 404)
    assert_envelope(await client.get("/ranking/", headers=account.headers, params={"machine_id": huge}), 404)
    assert_envelope(await client.post("/train/", headers=account.headers, params={"machine_id": huge, "target_column": "yield"}, files={"file": ("a.csv", process_csv())}), 404)
    report = {"model_id": huge, "status": "completed"}
    assert_envelope(await client.post("/webhook/treinamento/", headers={**account.headers, "Content-Type": "application/json"}, content=json.dumps(report).encode()), 404)
    assert_envelope(await client.post("/machines/", headers=account.headers, json={}), 422)
    assert_envelope(await client.post("/machines/", headers=account.headers, json={"machine_name": ""}), 422)
    assert_envelope(await seed_train(client, account.headers, number, content=b"%PDF-1.7\n" + bytes(range(256)) * 4), 422)
    body = assert_envelope(await client.post("/train/", headers=account.headers, params={"machine_id": number, "target_column": "nope"}, files={"file": ("a.csv", process_csv())}), 422)
    assert "target_column" in body["details"]
    assert_envelope(await client.post("/train/", headers=account.headers, params={"machine_id": number}, files={"file": ("a.csv", process_csv())}), 422)
    # Without the opt-in, no token means 401 on every one of them.
    for method, path in (("GET", "/machines/"), ("POST", "/machines/"), ("GET", f"/machines/{number}"), ("DELETE", f"/machines/{number}"), ("GET", f"/ranking/?machine_id={number}")):
        assert_envelope(await client.request(method, path, json={"machine_name": "x"} if method == "POST" else None), 401)
    assert_envelope(await client.post("/train/", params={"machine_id": number, "target_column": "yield"}, files={"file": ("a.csv", process_csv())}), 401)


async def test_a_viewer_reads_but_cannot_change(client: httpx.AsyncClient, account: Account) -> None:
    viewer = await add_member(client, account, "viewer")
    number = (await client.post("/machines/", headers=account.headers, json={"machine_name": "Torno"})).json()["id"]
    assert (await client.get("/machines/", headers=viewer.headers)).status_code == 200
    assert_envelope(await client.post("/machines/", headers=viewer.headers, json={"machine_name": "x"}), 403)
    assert_envelope(await client.delete(f"/machines/{number}", headers=viewer.headers), 403)


async def test_opted_in_deployment_serves_the_frontend_without_a_token(open_client: httpx.AsyncClient, client: httpx.AsyncClient, account: Account) -> None:
    created = await open_client.post("/machines/", json={"machine_name": "Linha A"}, headers={"Origin": "http://localhost:3000"})
    assert created.status_code == 200, created.text
    assert created.headers["access-control-allow-origin"] == "http://localhost:3000"
    number = created.json()["id"]
    # It is the account's machine: the canonical API shows it to its token.
    canonical = (await client.get("/api/v1/machines", headers=account.headers)).json()
    assert [m["number"] for m in canonical] == [number]

    started = await seed_train(open_client, {}, number)
    assert started.status_code == 200, started.text
    assert (await wait_for_job(client, account, started.json()["job_id"]))["status"] == "succeeded"
    ranking = await open_client.get("/ranking/", params={"machine_id": number})
    assert ranking.status_code == 200 and ranking.json()["ranking"][0]["feature"] == "pressure"
    assert (await open_client.delete(f"/machines/{number}")).status_code == 200
    # The opt-in covers the seed paths only.
    assert_envelope(await open_client.get("/api/v1/machines"), 401)


async def test_cors_preflight_from_the_frontends_origin(client: httpx.AsyncClient) -> None:
    for origin in ("http://localhost:3000", "http://127.0.0.1:3000"):
        preflight = await client.options("/machines/", headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "POST" in preflight.headers["access-control-allow-methods"]
    refused = await client.options("/machines/", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in refused.headers


def signed_headers(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if at is None else at
    return {"Content-Type": "application/json", "X-VUR-Timestamp": str(timestamp), "X-VUR-Signature": "sha256=" + sign(secret, timestamp, body)}


async def test_incoming_training_webhook(open_client: httpx.AsyncClient, client: httpx.AsyncClient, account: Account) -> None:
    number = (await client.post("/machines/", headers=account.headers, json={"machine_name": "Forno"})).json()["id"]
    report = json.dumps({"model_id": number, "status": "completed", "metrics": {"r2": 0.88}}).encode()

    assert_envelope(await open_client.post("/webhook/treinamento/", content=report, headers={"Content-Type": "application/json"}), 401)
    assert_envelope(await open_client.post("/webhook/treinamento/", content=report, headers=signed_headers(report, secret="not-the-secret")), 401)
    stale = signed_headers(report, at=int(time.time()) - 3600)
    assert_envelope(await open_client.post("/webhook/treinamento/", content=report, headers=stale), 401)

    accepted = await open_client.post("/webhook/treinamento/", content=report, headers=signed_headers(report))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "completed" and accepted.json()["model_id"] == number
    machine = (await client.get(f"/machines/{number}", headers=account.headers)).json()
    assert machine["status"] == "completed"
    detail = [m for m in (await client.get("/api/v1/machines", headers=account.headers)).json() if m["number"] == number][0]
    assert detail["metrics"] == {"r2": 0.88}

    # With a token instead of a signature (the live server has no webhook secret).
    by_token = json.dumps({"model_id": number, "status": "failed"}).encode()
    assert (await client.post("/webhook/treinamento/", content=by_token, headers={**account.headers, "Content-Type": "application/json"})).status_code == 200
    assert (await client.get(f"/machines/{number}", headers=account.headers)).json()["status"] == "failed"

    unknown = json.dumps({"model_id": 4242, "status": "completed"}).encode()
    assert_envelope(await open_client.post("/webhook/treinamento/", content=unknown, headers=signed_headers(unknown)), 404)
    deep = b"[" * 10_000 + b"]" * 10_000  # nested past the parser's limit: json.loads ran out of stack, a 500
    for bad in (b"{}", b'{"model_id": 1}', b'{"status": "completed"}', b'{"model_id": 1, "status": "exploded"}', b"{not json", b"[1, 2]", b'{"model_id": "x y", "status": "completed"}', deep):
        assert_envelope(await open_client.post("/webhook/treinamento/", content=bad, headers=signed_headers(bad)), 400)
    # Found by fuzzing, both were 500s: a UUID in the error's details, and a lone surrogate
    # (a JSON escape UTF-8 cannot encode), which was echoed in the error's message.
    no_status = json.dumps({"model_id": str(uuid.uuid4()), "status": None}).encode()
    assert assert_envelope(await open_client.post("/webhook/treinamento/", content=no_status, headers=signed_headers(no_status)), 400)["details"] == {"status": "required"}
    surrogate = b'{"model_id": 1, "status": "\\udc83"}'
    assert "surrogate" in assert_envelope(await open_client.post("/webhook/treinamento/", content=surrogate, headers=signed_headers(surrogate)), 400)["details"]["body"]


async def test_trainings_fire_the_workspaces_webhooks(client: httpx.AsyncClient, account: Account) -> None:
    with Receiver() as receiver:
        webhook = (await client.post("/api/v1/webhooks", headers=account.headers, json={"url": receiver.url, "events": ["training.completed", "training.failed"]})).json()
        machine = (await client.post("/api/v1/machines", headers=account.headers, json={"machine_name": "Prensa"})).json()
        files = {"file": ("a.csv", process_csv(), "text/csv")}
        job_id = (await client.post(f"/api/v1/machines/{machine['id']}/train", headers=account.headers, files=files, data={"target_column": "yield"})).json()["job_id"]
        await wait_for_job(client, account, job_id)
        header, *rows = process_csv().decode().splitlines()
        constant = "\n".join([header, *(row.rsplit(",", 1)[0] + ",1" for row in rows)]).encode()
        files = {"file": ("b.csv", constant, "text/csv")}
        job_id = (await client.post(f"/api/v1/machines/{machine['id']}/train", headers=account.headers, files=files, data={"target_column": "yield"})).json()["job_id"]
        await wait_for_job(client, account, job_id)

        deadline = time.monotonic() + 30
        while len(receiver.requests) < 2:
            assert time.monotonic() < deadline, receiver.requests
            await asyncio.sleep(0.1)
    # Deliveries are independent (one may be retried after the other went out): by event, not by order.
    delivered = {body["event"]: body for body in (json.loads(request.body) for request in receiver.requests)}
    completed, failed = delivered["training.completed"], delivered["training.failed"]
    assert completed["status"] == "completed"
    assert completed["model_id"] == machine["model_id"] and completed["machine_id"] == machine["id"]
    assert completed["metrics"]["r2"] > 0.9 and "date" in completed["metrics"]
    assert failed["status"] == "failed" and "constant" in failed["error"]
    request = receiver.requests[0]
    assert verify(webhook["secret"], request.headers["x-vur-timestamp"], request.headers["x-vur-signature"], request.body)
