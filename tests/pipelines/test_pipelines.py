"""Pipelines over HTTP: the seven steps kept per workspace, done in order, exported as a
signed document and imported elsewhere, and run end to end as one job."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv, register, wait_for_job
from vur.settings import Settings

pytestmark = pytest.mark.anyio

STEPS = ["upload", "preview", "split", "preprocessing", "features", "model", "training"]
NAIVE = {"algorithm": "naive", "horizon": 24, "validation": {"method": "holdout"}}


async def upload(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> str:
    csv = hourly_csv(tmp_path / "hourly.csv", hours=24 * 14).read_bytes()
    response = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("hourly.csv", io.BytesIO(csv), "text/csv")})
    assert response.status_code == 201, response.text
    return response.json()["dataset_id"]


async def create(client: httpx.AsyncClient, account: Account, **body: object) -> dict:
    response = await client.post("/api/v1/pipelines", headers=account.headers, json={"name": "hourly demand", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def complete(client: httpx.AsyncClient, account: Account, pipeline_id: str, step: str) -> httpx.Response:
    return await client.post(f"/api/v1/pipelines/{pipeline_id}/steps/{step}/complete", headers=account.headers)


async def count(client: httpx.AsyncClient, account: Account) -> int:
    response = await client.get("/api/v1/pipelines", headers=account.headers)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


def statuses(pipeline: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in pipeline["steps"]}




async def test_crud_stays_in_its_workspace(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id = await upload(client, account, tmp_path)
    created = await create(client, account, description="first try")
    assert created["status"] == "draft" and created["current_step"] == "upload" and created["completed_steps"] == []
    assert [step["name"] for step in created["steps"]] == STEPS and set(statuses(created).values()) == {"pending"}
    pipeline_id = created["id"]

    listed = await client.get("/api/v1/pipelines", headers=account.headers, params={"status": "draft"})
    assert listed.headers["X-Total-Count"] == "1" and listed.json()[0]["id"] == pipeline_id
    assert (await client.get("/api/v1/pipelines", headers=account.headers, params={"status": "completed"})).json() == []

    update = {"name": "renamed", "steps": {"upload": {"dataset_id": dataset_id}, "model": NAIVE}}
    updated = await client.put(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers, json=update)
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["name"] == "renamed" and body["description"] == "first try" and body["status"] == "ready"
    assert body["steps"][0]["config"] == {"dataset_id": dataset_id} and body["steps"][5]["config"]["algorithm"] == "naive"
    assert (await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).json()["name"] == "renamed"

    stranger = await register(client)
    assert (await client.get("/api/v1/pipelines", headers=stranger.headers)).json() == []
    assert_envelope(await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=stranger.headers), 404)
    assert_envelope(await client.put(f"/api/v1/pipelines/{pipeline_id}", headers=stranger.headers, json={"name": "mine"}), 404)
    assert_envelope(await complete(client, stranger, pipeline_id, "upload"), 404)
    assert_envelope(await client.get(f"/api/v1/pipelines/{pipeline_id}/export", headers=stranger.headers), 404)
    assert_envelope(await client.post(f"/api/v1/pipelines/{pipeline_id}/run", headers=stranger.headers), 404)
    assert_envelope(await client.delete(f"/api/v1/pipelines/{pipeline_id}", headers=stranger.headers), 404)
    # Nor can another workspace point a pipeline at this workspace's dataset.
    theirs = await client.post("/api/v1/pipelines", headers=stranger.headers, json={"name": "x", "steps": {"upload": {"dataset_id": dataset_id}}})
    assert "steps.upload.config.dataset_id" in assert_envelope(theirs, 422)["details"]

    assert (await client.delete(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).status_code == 204
    assert_envelope(await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers), 404)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "x", "owner": "me"}, "owner"),
        ({"name": "x", "steps": {"deploy": {}}}, "steps.deploy"),
        ({"name": "x", "steps": {"split": {"train_size": 0.8, "test_size": 0.5}}}, "steps.split"),
        ({"name": "x", "steps": {"model": {"algorithm": "naive", "horizon": "24"}}}, "steps.model.horizon"),
        ({"name": "x", "steps": {"preprocessing": {}}}, "steps.preprocessing"),
        ({"name": "x", "steps": {"upload": {"dataset_id": "00000000-0000-0000-0000-000000000001"}}}, "steps.upload.config.dataset_id"),
    ],
)
async def test_bad_pipelines_are_refused(client: httpx.AsyncClient, account: Account, body: dict, field: str) -> None:
    details = assert_envelope(await client.post("/api/v1/pipelines", headers=account.headers, json=body), 422)["details"]
    assert any(key.startswith(field) for key in details), details
    assert await count(client, account) == 0


async def test_steps_are_done_in_order(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id = await upload(client, account, tmp_path)
    steps = {"upload": {"dataset_id": dataset_id}, "preview": {"target_column": "value"}, "split": {"train_size": 0.8, "test_size": 0.2}, "model": NAIVE}
    pipeline_id = (await create(client, account, steps=steps))["id"]

    early = assert_envelope(await complete(client, account, pipeline_id, "training"), 422)
    assert early["details"] == {"step": "training", "missing": STEPS[:-1]}
    for step in ("upload", "preview"):
        assert (await complete(client, account, pipeline_id, step)).status_code == 200
    assert_envelope(await complete(client, account, pipeline_id, "preview"), 409)
    assert assert_envelope(await complete(client, account, pipeline_id, "features"), 422)["details"]["missing"] == ["split", "preprocessing"]
    for step in ("split", "preprocessing", "features"):
        done = await complete(client, account, pipeline_id, step)
        assert done.status_code == 200, done.text
    pipeline = done.json()
    assert statuses(pipeline) == {**dict.fromkeys(STEPS, "pending"), "upload": "completed", "preview": "completed", "split": "completed", "preprocessing": "skipped", "features": "skipped"}
    assert pipeline["current_step"] == "model" and pipeline["dataset_id"] == dataset_id
    dataset = (await client.get(f"/api/v1/datasets/{dataset_id}", headers=account.headers)).json()
    assert dataset["config"]["split"]["train_size"] == 0.8

    # No training before the model is configured.
    blocked = assert_envelope(await complete(client, account, pipeline_id, "training"), 422)
    assert blocked["details"]["missing"] == ["model"] and "'model'" in blocked["error"]
    modelled = (await complete(client, account, pipeline_id, "model")).json()
    assert modelled["model_id"] and modelled["current_step"] == "training"
    model = (await client.get(f"/api/v1/models/{modelled['model_id']}", headers=account.headers)).json()
    assert model["status"] == "configured" and model["dataset_id"] == dataset_id
    assert "model_id" in assert_envelope(await complete(client, account, pipeline_id, "training"), 422)["details"]

    # A changed configuration puts its step and every later one back to pending.
    changed = await client.put(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers, json={"steps": {"split": {"train_size": 0.7, "test_size": 0.3}}})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["completed_steps"] == ["upload", "preview"] and after["current_step"] == "split" and after["model_id"] is None
    assert statuses(after)["preprocessing"] == "pending"


async def export(client: httpx.AsyncClient, account: Account, pipeline_id: str) -> dict:
    response = await client.get(f"/api/v1/pipelines/{pipeline_id}/export", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_export_then_import_into_another_workspace(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id = await upload(client, account, tmp_path)
    steps = {"upload": {"dataset_id": dataset_id}, "split": {"train_size": 0.8, "test_size": 0.2}, "model": {**NAIVE, "dataset_id": dataset_id}}
    pipeline_id = (await create(client, account, description="exported", steps=steps))["id"]
    for step in ("upload", "preview", "split"):
        assert (await complete(client, account, pipeline_id, step)).status_code == 200

    document = await export(client, account, pipeline_id)
    assert document["format"] == "vur.pipeline" and document["version"] == 1 and len(document["signature"]) == 64
    assert [step["name"] for step in document["pipeline"]["steps"]] == STEPS and document["pipeline"]["steps"][0]["output"]["dataset_id"] == dataset_id

    # In its own workspace the copy keeps what was done.
    copy_here = await client.post("/api/v1/pipelines/import", headers=account.headers, json=document)
    assert copy_here.status_code == 201, copy_here.text
    assert copy_here.json()["completed_steps"] == ["upload", "preview", "split"] and copy_here.json()["dataset_id"] == dataset_id

    # Another workspace gets the configuration, never this workspace's dataset.
    other = await register(client)
    imported = await client.post("/api/v1/pipelines/import", headers=other.headers, json=document)
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert body["id"] != pipeline_id and body["name"] == "hourly demand" and body["description"] == "exported"
    assert body["steps"][0]["config"] is None and body["dataset_id"] is None and body["status"] == "draft"
    assert set(statuses(body).values()) == {"pending"} and body["completed_steps"] == []
    assert body["steps"][2]["config"]["train_size"] == 0.8
    assert body["steps"][5]["config"]["algorithm"] == "naive" and body["steps"][5]["config"]["dataset_id"] is None
    assert await count(client, other) == 1


def _changed(document: dict, change: str) -> dict:
    changed = copy.deepcopy(document)
    if change == "version":
        changed["version"] = 2
    elif change == "format":
        changed["format"] = "vur.workflow"
    elif change == "tampered":
        changed["pipeline"]["steps"][5]["config"]["horizon"] = 48
    elif change == "unsigned":
        del changed["signature"]
    elif change == "wrong_type":
        changed["pipeline"]["steps"] = "upload,preview"
    elif change == "reordered":
        steps = changed["pipeline"]["steps"]
        steps[0], steps[1] = steps[1], steps[0]
    elif change == "forged":  # this installation's name, another key's signature
        changed["signature"] = _signature(changed, "a guessed secret")
    elif change == "bad_installation":
        changed["installation"] = "not hex"
    return changed


def _signature(document: dict, secret: str) -> str:
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "change, field",
    [
        ("version", "version"),
        ("format", "format"),
        ("tampered", "signature"),
        ("unsigned", "signature"),
        ("wrong_type", "pipeline.steps"),
        ("reordered", "pipeline.steps"),
        ("forged", "signature"),
        ("bad_installation", "installation"),
    ],
)
async def test_import_refuses_bad_documents(client: httpx.AsyncClient, account: Account, change: str, field: str) -> None:
    document = await export(client, account, (await create(client, account, steps={"model": NAIVE}))["id"])
    before = await count(client, account)
    response = await client.post("/api/v1/pipelines/import", headers=account.headers, json=_changed(document, change))
    details = assert_envelope(response, 422)["details"]
    assert any(key.startswith(field) for key in details), details
    assert await count(client, account) == before


async def test_another_installations_document_brings_its_configuration(client: httpx.AsyncClient, account: Account, tmp_path: Path, settings: Settings) -> None:
    """Its signature cannot be checked here: what it says was done is not taken, only
    the configuration, as if the pipeline were created through the API."""
    dataset_id = await upload(client, account, tmp_path)
    pipeline_id = (await create(client, account, steps={"upload": {"dataset_id": dataset_id}, "split": {"train_size": 0.7, "test_size": 0.3}, "model": NAIVE}))["id"]
    for step in ("upload", "preview", "split"):
        assert (await complete(client, account, pipeline_id, step)).status_code == 200
    document = await export(client, account, pipeline_id)
    assert re.fullmatch(r"[0-9a-f]{16}", document["installation"])

    elsewhere = {**document, "installation": "0123456789abcdef"}
    elsewhere["signature"] = _signature(elsewhere, "the other installation's secret")
    imported = await client.post("/api/v1/pipelines/import", headers=account.headers, json=elsewhere)
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert body["completed_steps"] == [] and set(statuses(body).values()) == {"pending"} and body["status"] == "ready"  # as created, configured
    assert body["steps"][2]["config"]["train_size"] == 0.7 and body["steps"][5]["config"]["algorithm"] == "naive"
    assert not any(value for step in body["steps"] for value in step["output"].values())

    # A document exported before documents named their installation is this one's: checked, and kept whole.
    before = {key: value for key, value in document.items() if key != "installation"}
    before["signature"] = _signature(before, settings.resolved_secret_key())
    kept = await client.post("/api/v1/pipelines/import", headers=account.headers, json=before)
    assert kept.status_code == 201, kept.text
    assert kept.json()["completed_steps"] == ["upload", "preview", "split"]
    before["pipeline"]["name"] = "renamed"
    assert_envelope(await client.post("/api/v1/pipelines/import", headers=account.headers, json=before), 422)


async def test_import_refuses_malformed_and_oversized_bodies(client: httpx.AsyncClient, account: Account) -> None:
    document = await export(client, account, (await create(client, account))["id"])
    before = await count(client, account)
    malformed = await client.post("/api/v1/pipelines/import", headers={**account.headers, "Content-Type": "application/json"}, content=b'{"format": "vur.pipeline",')
    assert_envelope(malformed, 400)
    oversized = {**document, "pipeline": {**document["pipeline"], "description": "x" * 100_000}}
    assert_envelope(await client.post("/api/v1/pipelines/import", headers=account.headers, json=oversized), 413)
    assert_envelope(await client.post("/api/v1/pipelines/import", headers=account.headers, json=[document]), 422)
    assert await count(client, account) == before


async def test_run_does_every_step_in_one_job(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id = await upload(client, account, tmp_path)
    steps = {
        "upload": {"dataset_id": dataset_id},
        "preview": {"date_column": "date", "target_column": "value"},
        "split": {"train_size": 0.8, "validation_size": 0.0, "test_size": 0.2, "method": "time_series"},
        "preprocessing": {"missing_values": {"method": "forward_fill", "columns": ["value"]}},
        "features": {"seasonal_features": {"extract": ["hour", "day_of_week"]}},
        "model": NAIVE,
    }
    pipeline_id = (await create(client, account, steps=steps))["id"]
    started = await client.post(f"/api/v1/pipelines/{pipeline_id}/run", headers=account.headers)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    running = (await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).json()
    assert running["status"] == "running" and running["last_job_id"] == job_id
    assert_envelope(await client.delete(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers), 409)
    assert_envelope(await client.put(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers, json={"name": "busy"}), 409)

    job = await wait_for_job(client, account, job_id)
    assert job["status"] == "succeeded", job
    assert job["type"] == "pipelines.run" and job["progress"] == 100
    for step in STEPS:
        assert any(line.startswith(f"{step}: ") for line in job["log"]), (step, job["log"])
    assert "preprocessing: completed" in job["log"] and "training: completed" in job["log"]

    pipeline = (await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).json()
    assert pipeline["status"] == "completed" and pipeline["error"] is None
    assert set(statuses(pipeline).values()) == {"completed"} and pipeline["completed_steps"] == STEPS
    # The model trained on the dataset the features step made from the preprocessed one.
    assert pipeline["dataset_id"] not in (None, dataset_id) and job["result"]["model_id"] == pipeline["model_id"]
    features = (await client.get(f"/api/v1/datasets/{pipeline['dataset_id']}", headers=account.headers)).json()
    assert {"hour", "day_of_week"} <= set(features["columns"]) and features["config"]["split"]["train_size"] == 0.8
    model = (await client.get(f"/api/v1/models/{pipeline['model_id']}", headers=account.headers)).json()
    assert model["status"] == "trained" and model["algorithm"] == "naive" and model["dataset_id"] == pipeline["dataset_id"]
    monitored = (await client.get("/api/v1/monitoring/pipelines", headers=account.headers)).json()
    assert [(p["id"], p["status"], p["completed_steps"], p["total_steps"]) for p in monitored] == [(pipeline_id, "completed", 7, 7)]
    assert monitored[0]["last_run"]["status"] == "succeeded" and monitored[0]["last_run"]["progress"] == 100 and monitored[0]["running_streams"] == 0
    assert (await client.delete(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).status_code == 204


async def test_run_checks_what_it_can_before_the_job(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    draft = (await create(client, account))["id"]
    details = assert_envelope(await client.post(f"/api/v1/pipelines/{draft}/run", headers=account.headers), 422)["details"]
    assert set(details) == {"steps.upload.config.dataset_id", "steps.model.config"}

    # A model step configure would refuse is refused as soon as it is given.
    dataset_id = await upload(client, account, tmp_path)
    crystal_ball = {**NAIVE, "algorithm": "crystal_ball"}
    created = await client.post("/api/v1/pipelines", headers=account.headers, json={"name": "x", "steps": {"upload": {"dataset_id": dataset_id}, "model": crystal_ball}})
    refused = assert_envelope(created, 422)
    assert "crystal_ball" in refused["error"] and "steps.model.config.algorithm" in refused["details"]
    pipeline_id = (await create(client, account, steps={"upload": {"dataset_id": dataset_id}}))["id"]
    changed = await client.put(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers, json={"steps": {"model": {**NAIVE, "hyperparameters": {"bogus": 1}}}})
    assert "steps.model.config.hyperparameters.bogus" in assert_envelope(changed, 422)["details"]
    pipeline = (await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).json()
    assert pipeline["steps"][5]["config"] is None and pipeline["last_job_id"] is None
    assert "steps.model.config" in assert_envelope(await client.post(f"/api/v1/pipelines/{pipeline_id}/run", headers=account.headers), 422)["details"]
    jobs = await client.get("/api/v1/jobs", headers=account.headers, params={"type": "pipelines.run"})
    assert jobs.json() == []


async def test_a_step_that_fails_in_the_job_fails_the_pipeline(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id = await upload(client, account, tmp_path)
    steps = {"upload": {"dataset_id": dataset_id}, "model": {**NAIVE, "target_column": "no_such_column"}}
    pipeline_id = (await create(client, account, steps=steps))["id"]
    started = await client.post(f"/api/v1/pipelines/{pipeline_id}/run", headers=account.headers)
    assert started.status_code == 202, started.text
    job = await wait_for_job(client, account, started.json()["job_id"])
    assert job["status"] == "failed" and job["error"].startswith("StepFailed: model: ") and "no_such_column" in job["error"]

    pipeline = (await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).json()
    assert pipeline["status"] == "failed" and pipeline["current_step"] == "model"
    assert pipeline["error"].startswith("model: ") and "no_such_column" in pipeline["error"]
    assert statuses(pipeline) == {**dict.fromkeys(STEPS, "skipped"), "upload": "completed", "model": "failed", "training": "pending"}
    assert pipeline["model_id"] is None
    # Fixing the configuration makes it runnable again.
    fixed = await client.put(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers, json={"steps": {"model": NAIVE}})
    assert fixed.json()["status"] == "ready" and fixed.json()["error"] is None


async def test_a_cancelled_run_leaves_the_pipeline_runnable(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset_id = await upload(client, account, tmp_path)
    pipeline_id = (await create(client, account, steps={"upload": {"dataset_id": dataset_id}, "model": NAIVE}))["id"]
    started = await client.post(f"/api/v1/pipelines/{pipeline_id}/run", headers=account.headers)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert (await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=account.headers)).status_code == 200
    job = await wait_for_job(client, account, job_id)
    # Queued, it stops at once; running, at its next progress report (training alone takes seconds).
    assert job["status"] == "cancelled", job
    pipeline = (await client.get(f"/api/v1/pipelines/{pipeline_id}", headers=account.headers)).json()
    assert pipeline["status"] == "ready" and "Cancelled" in pipeline["error"]
    assert "running" not in statuses(pipeline).values() and "failed" not in statuses(pipeline).values()
