"""Predictions over HTTP: a trained model forecasts again from its fitted state, from
newer observations, in batches; every answer is recorded, scored when actual values
arrive, counted, and bad requests are refused without a trace."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, update

from tests.conftest import Account, add_member, assert_envelope, hourly_csv, register, wait_for_job, wait_until
from tests.core.test_smoke_slice import wait_for_training
from tests.core.test_websocket import authed, receive_until, subscribe
from vur.core import foreground
from vur.core.db import Database, get_database
from vur.forecasting import forecasters
from vur.predictions import scoring, service
from vur.predictions.schemas import DIRECT_BATCH, PredictionResponse
from vur.registry.models import ModelStatus, RegisteredModel
from vur.settings import Settings

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1)
HOURS = 24 * 14
LAST = START + timedelta(hours=HOURS - 1)  # the last timestamp of each series


async def train(client: httpx.AsyncClient, account: Account, tmp_path: Path, algorithm: str = "lightgbm", **extra: object) -> str:
    csv = hourly_csv(tmp_path / "two.csv", hours=HOURS, series=["A", "B"]).read_bytes()
    upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("two.csv", io.BytesIO(csv), "text/csv")})
    assert upload.status_code == 201, upload.text
    body = {
        "dataset_id": upload.json()["dataset_id"],
        "algorithm": algorithm,
        "date_column": "date",
        "target_column": "value",
        "series_id_column": "series",
        "horizon": 24,
        "levels": [80],
        "validation": {"method": "holdout"},
        **extra,
    }
    response = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert response.status_code == 202, response.text
    model_id = response.json()["model_id"]
    status = await wait_for_training(client, account, model_id)
    assert status["status"] == "completed", status
    return model_id


@pytest.fixture
async def model_id(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> str:
    return await train(client, account, tmp_path)


async def predict(client: httpx.AsyncClient, account: Account, model_id: str, **body: object) -> httpx.Response:
    return await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json=body)


async def count_predictions(client: httpx.AsyncClient, account: Account) -> int:
    response = await client.get("/api/v1/predictions", headers=account.headers)
    return int(response.headers["X-Total-Count"])


async def test_a_trained_model_forecasts_what_it_forecast_at_the_end_of_training(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    response = await predict(client, account, model_id, horizon=12)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert PredictionResponse.model_validate(answer).model_dump(mode="json") == answer  # written as its documented model writes it
    assert answer["model_version"] == 1 and answer["levels"] == [80] and answer["horizon"] == 12
    points = answer["predictions"]
    assert sorted({p["series_id"] for p in points}) == ["A", "B"] and len(points) == 24
    a = [p for p in points if p["series_id"] == "A"]
    assert a[0]["timestamp"].startswith((LAST + timedelta(hours=1)).isoformat())
    assert all(p["lower"]["80"] <= p["value"] <= p["upper"]["80"] for p in points)
    stored = (await client.get(f"/api/v1/models/{model_id}/forecast", headers=account.headers)).json()["predictions"]
    stored_a = [p["value"] for p in stored if p["series_id"] == "A"][:12]
    assert [p["value"] for p in a] == pytest.approx(stored_a)
    assert answer["latency_ms"] > 0

    only_b = await client.post("/api/v1/predictions/predict", headers=account.headers, json={"model_id": model_id, "horizon": 3, "series_ids": ["B"], "levels": []})
    assert only_b.status_code == 200, only_b.text
    assert [(p["series_id"], p["lower"]) for p in only_b.json()["predictions"]] == [("B", {}), ("B", {}), ("B", {})]


async def test_newer_observations_move_the_forecast_on(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    baseline = (await predict(client, account, model_id, horizon=6, series_ids=["A"])).json()["predictions"]
    # Three more hours of series A, far above its usual level: the lags carry them.
    observed = [{"series_id": "A", "timestamp": (LAST + timedelta(hours=k)).isoformat(), "value": 400.0} for k in (1, 2, 3)]
    response = await predict(client, account, model_id, horizon=6, series_ids=["A"], observations=observed)
    assert response.status_code == 200, response.text
    assert PredictionResponse.model_validate(response.json()).model_dump(mode="json") == response.json()
    moved = response.json()["predictions"]
    assert moved[0]["timestamp"].startswith((LAST + timedelta(hours=4)).isoformat())
    assert len(moved) == 6 and all(p["lower"]["80"] <= p["value"] <= p["upper"]["80"] for p in moved)
    assert moved[0]["value"] - baseline[3]["value"] > 0.1, (moved[0], baseline[3])


async def test_a_statistical_model_forecasts_from_the_newest_value(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    naive = await train(client, account, tmp_path, algorithm="naive")
    observed = [{"series_id": "B", "timestamp": (LAST + timedelta(hours=k)).isoformat(), "value": v} for k, v in ((1, 300.0), (2, 412.5))]
    response = await predict(client, account, naive, horizon=3, series_ids=["B"], observations=observed)
    assert response.status_code == 200, response.text
    assert [p["value"] for p in response.json()["predictions"]] == [412.5] * 3


async def test_actual_values_score_earlier_predictions(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    first = (await predict(client, account, model_id, horizon=4, series_ids=["A"])).json()
    forecast = {p["timestamp"]: p["value"] for p in first["predictions"]}
    stamps = sorted(forecast)[:3]
    actual = [110.0, 95.0, 101.0]
    observed = [{"series_id": "A", "timestamp": s, "value": v} for s, v in zip(stamps, actual, strict=True)]
    assert (await predict(client, account, model_id, horizon=2, series_ids=["A"], observations=observed)).status_code == 200
    # The same actual values again do not count twice.
    assert (await predict(client, account, model_id, horizon=2, series_ids=["A"], observations=observed)).status_code == 200

    # Scored in the forecasts' own transactions: recorded by the time they answered.
    stats = (await client.get("/api/v1/predictions/stats", headers=account.headers, params={"model_id": model_id})).json()
    errors = [a - forecast[s] for s, a in zip(stamps, actual, strict=True)]
    assert stats["total"] == 3 and stats["by_source"] == {"api": 3}
    assert stats["error"]["scored_points"] == 3
    assert stats["error"]["mae"] == pytest.approx(sum(abs(e) for e in errors) / 3, rel=1e-5)
    assert stats["error"]["rmse"] == pytest.approx((sum(e * e for e in errors) / 3) ** 0.5, rel=1e-5)
    assert stats["latency_ms"]["p50"] > 0 and stats["models"][0]["model_id"] == model_id

    detail = (await client.get(f"/api/v1/predictions/{first['prediction_id']}", headers=account.headers)).json()
    assert detail["scored_points"] == 3
    assert [p.get("actual") for p in detail["predictions"]] == [*actual, None]


async def test_an_answer_goes_out_before_its_record_and_a_later_read_waits_for_it(client: httpx.AsyncClient, account: Account, model_id: str, database: Database) -> None:
    """A forecast is recorded after its answer is sent (`vur.core.deferred`): the answer
    does not wait for the record, and a request made after the answer reads it."""
    release = threading.Event()
    database.deferred.submit("test", lambda session: release.wait(30))  # the writer is busy
    try:
        answer = await predict(client, account, model_id, horizon=3)
        assert answer.status_code == 200, answer.text  # answered while its record waits
        read = asyncio.create_task(client.get(f"/api/v1/predictions/{answer.json()['prediction_id']}", headers=account.headers))
        await asyncio.sleep(0.5)
        assert not read.done()
    finally:
        release.set()
    detail = await read
    assert detail.status_code == 200 and detail.json()["horizon"] == 3 and detail.json()["predictions"] == answer.json()["predictions"]


async def test_observations_score_a_forecast_longer_than_any_before_it(client: httpx.AsyncClient, account: Account, model_id: str, settings: Settings) -> None:
    """Scoring reads only the predictions that end within the model's longest forecast
    after the newest observation: a longer forecast lengthens that bound, or the values
    observed near its start would never reach it."""

    def model_row() -> tuple[float | None, datetime]:
        database = get_database(settings.resolved_database_url)
        database.deferred.wait(10)  # the answers' records, written once they were sent
        with database.session() as session:
            model = session.get(RegisteredModel, uuid.UUID(model_id))
            return model.longest_forecast_seconds, model.updated_at

    longest, updated = model_row()
    short = (await predict(client, account, model_id, horizon=2, series_ids=["A"])).json()
    long = (await predict(client, account, model_id, horizon=24, series_ids=["A"])).json()
    assert longest is None and model_row() == (23 * 3600.0, updated)  # bookkeeping: the model's updated_at stays
    # Twenty hours observed: the long forecast ends four hours after them, the short one is all covered.
    observed = [{"series_id": "A", "timestamp": (LAST + timedelta(hours=k)).isoformat(), "value": 100.0 + k} for k in range(1, 21)]
    assert (await predict(client, account, model_id, horizon=1, series_ids=["A"], observations=observed)).status_code == 200
    scored = {p["id"]: p["scored_points"] for p in (await client.get("/api/v1/predictions", headers=account.headers, params={"model_id": model_id})).json()}
    assert scored[short["prediction_id"]] == 2 and scored[long["prediction_id"]] == 20


async def test_history_lists_with_filters_and_paging(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    for horizon in (1, 2, 3):
        assert (await predict(client, account, model_id, horizon=horizon)).status_code == 200
    realtime = await client.post("/api/v1/predictions/real-time", headers=account.headers, json={"model_id": model_id, "horizon": 1})
    assert realtime.status_code == 200
    page = await client.get("/api/v1/predictions/history", headers=account.headers, params={"limit": 2})
    assert page.headers["X-Total-Count"] == "4" and len(page.json()) == 2
    assert page.json()[0]["source"] == "real_time" and len(page.json()[0]["predictions"]) == 2
    api_only = await client.get("/api/v1/predictions", headers=account.headers, params={"source": "api"})
    assert [p["horizon"] for p in api_only.json()] == [3, 2, 1]
    assert "source" in str(assert_envelope(await client.get("/api/v1/predictions", headers=account.headers, params={"source": "zzz"}), 422)["details"])
    future = (datetime.now() + timedelta(days=1)).isoformat()
    assert (await client.get("/api/v1/predictions", headers=account.headers, params={"since": future})).json() == []
    stranger = await register(client)
    assert await count_predictions(client, stranger) == 0
    assert_envelope(await client.get(f"/api/v1/predictions/{realtime.json()['prediction_id']}", headers=stranger.headers), 404)


async def test_real_time_predictions_are_pushed_on_the_predictions_topic(ws_url: str, client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    async with authed(ws_url, account) as ws:
        await subscribe(ws, "predictions")
        response = await client.post("/api/v1/predictions/real-time", headers=account.headers, json={"model_id": model_id, "horizon": 2, "series_ids": ["A"]})
        assert response.status_code == 200
        messages = await receive_until(ws, lambda m: m["type"] == "prediction", timeout=10)
    pushed = messages[-1]["data"]
    assert pushed["prediction_id"] == response.json()["prediction_id"] and len(pushed["predictions"]) == 2


def counted_in_metrics(text: str, source: str) -> float:
    """`vur_predictions_total{source=...}` in a /metrics page (0 before the first)."""
    line = next((line for line in text.splitlines() if line.startswith(f'vur_predictions_total{{source="{source}"}}')), None)
    return float(line.split()[-1]) if line else 0.0


async def test_batches_answer_directly_or_as_a_job(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    metric = counted_in_metrics((await client.get("/metrics")).text, "batch")
    small = await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": model_id, "requests": [{"horizon": 2}, {"horizon": 3, "series_ids": ["B"]}]})
    assert small.status_code == 200, small.text
    assert [len(r["predictions"]) for r in small.json()["results"]] == [4, 3]

    requests = [{"horizon": 1 + k % 24, "series_ids": ["A"]} for k in range(DIRECT_BATCH + 5)]
    large = await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": model_id, "requests": requests})
    assert large.status_code == 202, large.text
    job_id = large.json()["job_id"]
    early = await client.get(f"/api/v1/predictions/batch/{job_id}", headers=account.headers)
    assert early.status_code in (200, 409)
    for _ in range(200):
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)).json()
        if job["status"] in ("succeeded", "failed"):
            break
        await __import__("asyncio").sleep(0.2)
    assert job["status"] == "succeeded", job
    result = (await client.get(f"/api/v1/predictions/batch/{job_id}", headers=account.headers)).json()
    assert [len(r["predictions"]) for r in result["results"]] == [r["horizon"] for r in requests]
    assert (await client.get("/api/v1/predictions", headers=account.headers, params={"source": "batch"})).headers["X-Total-Count"] == str(2 + len(requests))

    # The job's predictions were counted in its job process; the API's /metrics has them too.
    async def counted() -> float:
        return counted_in_metrics((await client.get("/metrics")).text, "batch")

    async def all_counted() -> bool:
        return await counted() >= metric + 2 + len(requests)

    await wait_until(all_counted, timeout=10)
    assert await counted() == metric + 2 + len(requests)


async def test_a_batch_names_the_request_it_refuses_and_records_none(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    def counted(text: str) -> float:
        line = next((line for line in text.splitlines() if line.startswith('vur_predictions_total{source="batch"}')), None)
        return float(line.split()[-1]) if line else 0.0

    before, metric = await count_predictions(client, account), counted((await client.get("/metrics")).text)
    small = [{"horizon": 2}, {"horizon": 99}]
    refused = assert_envelope(await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": model_id, "requests": small}), 422)
    assert refused["error"].startswith("Request 1 of the batch") and "requests.1.horizon" in refused["details"]
    # A large one is checked before a job is queued for it.
    large = [{"horizon": 2, "series_ids": ["A"]}] * DIRECT_BATCH + [{"horizon": 99}]
    refused = assert_envelope(await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": model_id, "requests": large}), 422)
    assert f"requests.{DIRECT_BATCH}.horizon" in refused["details"]
    # Whatever the direct path refuses without running the model, so is it in a large batch, before a job is queued.
    after_a_gap = [{"series_id": "A", "timestamp": (LAST + timedelta(hours=5)).isoformat(), "value": 1.0}]
    # A series the model never saw, too short for its seasonal differences (24 steps).
    newcomer = [{"series_id": "Z", "timestamp": (LAST + timedelta(hours=h)).isoformat(), "value": 1.0 + h} for h in range(3)]
    for last, field in (
        ({"horizon": 2, "series_ids": ["A"], "observations": after_a_gap}, "observations"),
        ({"horizon": 2, "series_ids": ["Z"], "observations": newcomer}, "observations"),
        ({"horizon": 2, "levels": [95]}, "levels"),
        ({"horizon": 2, "version": 7}, "version"),
    ):
        sent = await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": model_id, "requests": [*large[:-1], last]})
        refused = assert_envelope(sent, 422)
        assert refused["error"].startswith(f"Request {DIRECT_BATCH} of the batch") and f"requests.{DIRECT_BATCH}.{field}" in refused["details"], refused
    assert await count_predictions(client, account) == before
    assert counted((await client.get("/metrics")).text) == metric
    assert (await client.get("/api/v1/jobs", headers=account.headers, params={"type": "predictions.batch"})).json() == []


async def test_a_batch_job_that_fails_part_way_records_none_of_its_predictions(client: httpx.AsyncClient, account: Account, tmp_path: Path, settings: Settings) -> None:
    naive = await train(client, account, tmp_path, algorithm="naive")
    assert (await client.post(f"/api/v1/models/{naive}/train", headers=account.headers)).status_code == 202
    assert (await wait_for_training(client, account, naive))["status"] == "completed"
    # Version 2 answers here (the API keeps its loaded model), then its file is damaged:
    # the job process, which has not loaded it, fails at the batch's last request.
    assert (await predict(client, account, naive, horizon=1, version=2)).status_code == 200
    fitted = max(settings.artifacts_dir.rglob(f"{naive.replace('-', '')}/versions/*/forecaster.pkl"), key=lambda path: path.stat().st_mtime)  # version 2's
    fitted.write_bytes(b"not a pickle at all")
    before, metric = await count_predictions(client, account), counted_in_metrics((await client.get("/metrics")).text, "batch")
    requests = [{"horizon": 2, "version": 1}] * DIRECT_BATCH + [{"horizon": 2, "version": 2}]
    accepted = await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": naive, "requests": requests})
    assert accepted.status_code == 202, accepted.text
    job = await wait_for_job(client, account, accepted.json()["job_id"])
    assert job["status"] == "failed" and "Version 2" in job["error"], job
    assert_envelope(await client.get(f"/api/v1/predictions/batch/{job['id']}", headers=account.headers), 409)
    assert await count_predictions(client, account) == before
    assert counted_in_metrics((await client.get("/metrics")).text, "batch") == metric


async def test_a_forecast_made_as_soon_as_a_retraining_ends_uses_the_new_version(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    """Forecasts made while a job process trains the next version are answered by the
    current one and kept by none: the first one after the job uses the new version."""
    naive = await train(client, account, tmp_path, algorithm="naive")
    accepted = await client.post(f"/api/v1/models/{naive}/train", headers=account.headers)
    assert accepted.status_code == 202, accepted.text
    during, deadline = set(), asyncio.get_running_loop().time() + 120
    while (job := (await client.get(f"/api/v1/jobs/{accepted.json()['job_id']}", headers=account.headers)).json())["status"] not in ("succeeded", "failed"):
        answer = await predict(client, account, naive, horizon=1)
        assert answer.status_code == 200, answer.text
        during.add(answer.json()["model_version"])
        assert asyncio.get_running_loop().time() < deadline, job
    assert job["status"] == "succeeded", job
    assert during <= {1, 2}
    assert (await predict(client, account, naive, horizon=1)).json()["model_version"] == 2


async def test_a_change_made_by_another_process_is_served_within_a_second(client: httpx.AsyncClient, account: Account, tmp_path: Path, settings: Settings) -> None:
    naive = await train(client, account, tmp_path, algorithm="naive")
    assert (await predict(client, account, naive, horizon=1)).status_code == 200
    # As another process would change it: not through this process's sessions.
    other = create_engine(settings.resolved_database_url)
    try:
        with other.begin() as connection:
            connection.execute(update(RegisteredModel.__table__).where(RegisteredModel.__table__.c.id == uuid.UUID(naive)).values(status=ModelStatus.archived))
    finally:
        other.dispose()
    await asyncio.sleep(service.SERVED_SECONDS)
    assert_envelope(await predict(client, account, naive, horizon=1), 409)


async def test_predictions_are_counted_in_the_metrics(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    def counted(text: str) -> float:
        line = next((line for line in text.splitlines() if line.startswith('vur_predictions_total{source="api"}')), None)
        return float(line.split()[-1]) if line else 0.0

    before = counted((await client.get("/metrics")).text)
    assert (await predict(client, account, model_id, horizon=1)).status_code == 200
    assert counted((await client.get("/metrics")).text) == before + 1


async def test_an_exported_and_loaded_model_predicts_the_same(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    bundle = await client.get(f"/api/v1/models/{model_id}/export", headers=account.headers)
    loaded = await client.post("/api/v1/models/load", headers=account.headers, files={"file": ("m.zip", io.BytesIO(bundle.content), "application/zip")})
    assert loaded.status_code == 201, loaded.text
    original = (await predict(client, account, model_id, horizon=5)).json()["predictions"]
    again = (await predict(client, account, loaded.json()["id"], horizon=5)).json()["predictions"]
    assert [p["value"] for p in again] == pytest.approx([p["value"] for p in original])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"horizon": 25}, 422, "horizon"),
        ({"horizon": 0}, 422, "horizon"),
        ({"horizon": "24"}, 422, "horizon"),
        ({"horizon": 2, "levels": [95]}, 422, "levels"),
        ({"horizon": 2, "series_ids": ["Z"]}, 422, "series_ids"),
        ({"horizon": 2, "observations": [{"timestamp": "2026-02-01T00:00:00", "value": 1.0}]}, 422, "observations"),
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": "yesterday", "value": 1.0}]}, 422, "timestamp"),
        # A gap after the history, and a time off the hourly grid: the model would read them as the next hour.
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": (LAST + timedelta(hours=3)).isoformat(), "value": 1.0}]}, 422, "observations"),
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": (LAST + timedelta(minutes=90)).isoformat(), "value": 1.0}]}, 422, "observations"),
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": "2026-02-01T00:00:00", "value": "NaN"}]}, 422, "value"),
        (b'{"horizon": 2, "observations": [{"series_id": "A", "timestamp": "2026-02-01T00:00:00", "value": 1e400}]}', 422, "value"),
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": (LAST + timedelta(hours=1)).isoformat(), "value": 1e308}]}, 422, "value"),
        ({"horizon": 2, "version": 7}, 422, "version"),
        ({"horizon": 2, "script": "<script>alert(1)</script>"}, 422, "script"),
        # Outside pandas' datetime64[ns] range a time would wrap around to one centuries away.
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": "9999-12-31T23:00:00", "value": 1.0}]}, 422, "observations.0.timestamp"),
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": "1600-01-01T00:00:00Z", "value": 1.0}]}, 422, "observations.0.timestamp"),
        ({"horizon": 2, "observations": [{"series_id": "A", "timestamp": "2262-04-11T22:00:00-05:00", "value": 1.0}]}, 422, "observations.0.timestamp"),
    ],
)
async def test_bad_requests_are_refused_and_leave_nothing(client: httpx.AsyncClient, account: Account, model_id: str, body: dict | bytes, status: int, field: str) -> None:
    before = await count_predictions(client, account)
    url = f"/api/v1/models/{model_id}/predict"
    sent = await (client.post(url, headers={**account.headers, "Content-Type": "application/json"}, content=body) if isinstance(body, bytes) else predict(client, account, model_id, **body))
    details = assert_envelope(sent, status)["details"]
    assert any(field in key for key in details), details
    assert await count_predictions(client, account) == before

    async def none_being_answered() -> bool:  # a refusal ends its answer too: background checks stop waiting for it
        return foreground._answering == 0

    await wait_until(none_being_answered)


@pytest.mark.parametrize("route", ["/api/v1/models/{model_id}/predict", "/api/v1/predictions/predict", "/api/v1/predictions/real-time"])
async def test_the_forecast_routes_refuse_what_every_route_refuses(client: httpx.AsyncClient, account: Account, model_id: str, route: str) -> None:
    """The forecast routes read a request in one pass of their own (`ForecastRoute`) and
    hand anything else to FastAPI: each refusal reads as on every other route."""
    url, body = route.format(model_id=model_id), {"model_id": model_id, "horizon": 2} if "{model_id}" not in route else {"horizon": 2}
    before = await count_predictions(client, account)
    as_json = {**account.headers, "content-type": "application/json"}
    assert assert_envelope(await client.post(url, headers=as_json, content=b'{"horizon": '), 400)["error"] == "Malformed JSON body"
    assert assert_envelope(await client.post(url, headers={**account.headers, "content-type": "text/plain"}, content=json.dumps(body)), 422)["details"] == {"body": "Input should be a valid dictionary or object to extract fields from"}
    assert "horizon" in assert_envelope(await client.post(url, headers=account.headers, json={**body, "horizon": 2.5}), 422)["details"]
    assert_envelope(await client.post(url, json=body), 401)
    assert_envelope(await client.post(url, headers={"Authorization": "Bearer not-a-token"}, json=body), 401)
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await client.post(url, headers=viewer.headers, json=body), 403)
    assert_envelope(await client.post(url, json={"horizon": "soon"}), 401)  # who asks is checked before what is asked
    if "{model_id}" in route:
        assert "model_id" in assert_envelope(await client.post(route.format(model_id="not-a-uuid"), headers=account.headers, json=body), 422)["details"]
    assert await count_predictions(client, account) == before
    assert (await client.post(url, headers=account.headers, json=body)).status_code == 200


async def test_two_values_of_a_series_at_one_timestamp_are_refused(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    before = await count_predictions(client, account)
    at = (LAST + timedelta(hours=1)).isoformat()
    twice = [{"series_id": "A", "timestamp": at, "value": 1.0}, {"series_id": "B", "timestamp": at, "value": 1.0}, {"series_id": "A", "timestamp": f"{at}+00:00", "value": 2.0}]
    details = assert_envelope(await predict(client, account, model_id, horizon=2, observations=twice), 422)["details"]
    assert f"series 'A' is given twice at {at}" in details["observations"], details
    same_value = [twice[0], twice[0]]
    assert "series 'A' is given twice" in assert_envelope(await predict(client, account, model_id, horizon=2, observations=same_value), 422)["details"]["observations"]
    assert await count_predictions(client, account) == before
    # Times with and without a zone, each given once, are fine together.
    mixed = [twice[0], {"series_id": "A", "timestamp": f"{(LAST + timedelta(hours=2)).isoformat()}+00:00", "value": 2.0}]
    assert (await predict(client, account, model_id, horizon=2, observations=mixed)).status_code == 200


async def test_a_forecast_that_is_not_finite_is_refused(client: httpx.AsyncClient, account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    naive = await train(client, account, tmp_path, algorithm="naive")
    before = await count_predictions(client, account)
    # A model whose state runs away (a multiplicative trend, say) forecasts infinity; played by one that always does.
    original = forecasters.StatisticalForecaster._points
    monkeypatch.setattr(forecasters.StatisticalForecaster, "_points", lambda self, history, horizon: dataclasses.replace(original(self, history, horizon), mean=np.full(horizon, np.inf)))
    observed = [{"series_id": "B", "timestamp": (LAST + timedelta(hours=1)).isoformat(), "value": 100.0}]
    details = assert_envelope(await predict(client, account, naive, horizon=3, series_ids=["B"], observations=observed), 422)["details"]
    assert "not a finite number" in details["observations"]
    assert await count_predictions(client, account) == before


async def test_models_that_cannot_predict(client: httpx.AsyncClient, account: Account, model_id: str, tmp_path: Path) -> None:
    stranger = await register(client)
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/predict", headers=stranger.headers, json={"horizon": 1}), 404)
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, content=b"{not json"), 422)
    huge = {"horizon": 1, "series_ids": ["A" * 200] * 5000}
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json=huge), 413)

    csv = hourly_csv(tmp_path / "one.csv", hours=HOURS).read_bytes()
    upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("one.csv", io.BytesIO(csv), "text/csv")})
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": upload.json()["dataset_id"], "algorithm": "naive", "horizon": 4})
    untrained = configured.json()["model_id"]
    assert_envelope(await predict(client, account, untrained, horizon=1), 409)
    assert_envelope(await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": untrained, "requests": [{"horizon": 1}] * 30}), 409)

    assert (await client.delete(f"/api/v1/models/{model_id}", headers=account.headers)).status_code == 204
    assert_envelope(await predict(client, account, model_id, horizon=1), 404)
    assert await count_predictions(client, account) == 0


async def test_deployed_and_archived_models(client: httpx.AsyncClient, account: Account, model_id: str, tmp_path: Path) -> None:
    url = f"/api/v1/models/{model_id}"
    deployed = await client.post(f"{url}/deploy", headers=account.headers)
    assert deployed.status_code == 200 and deployed.json()["status"] == "deployed"
    assert (await predict(client, account, model_id, horizon=1)).status_code == 200

    archived = await client.post(f"{url}/archive", headers=account.headers)
    assert archived.json()["status"] == "archived"
    assert_envelope(await predict(client, account, model_id, horizon=1), 409)
    assert_envelope(await client.post(f"{url}/train", headers=account.headers), 409)
    assert_envelope(await client.post(f"{url}/deploy", headers=account.headers), 409)
    assert (await client.get(f"{url}/forecast", headers=account.headers)).status_code == 200  # its results stay readable

    restored = await client.post(f"{url}/restore", headers=account.headers)
    assert restored.json()["status"] == "trained"
    assert_envelope(await client.post(f"{url}/restore", headers=account.headers), 409)
    assert (await predict(client, account, model_id, horizon=1)).status_code == 200

    csv = hourly_csv(tmp_path / "one.csv", hours=HOURS).read_bytes()
    upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("one.csv", io.BytesIO(csv), "text/csv")})
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": upload.json()["dataset_id"], "algorithm": "naive", "horizon": 4})
    assert_envelope(await client.post(f"/api/v1/models/{configured.json()['model_id']}/deploy", headers=account.headers), 409)


async def test_a_csv_of_observations_is_a_batch_of_one_forecast_per_series(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    naive = await train(client, account, tmp_path, algorithm="naive")
    rows = [f"{(LAST + timedelta(hours=k)).isoformat()},{series},{value}" for k, series, value in ((1, "A", 300.0), (2, "A", 301.5), (1, "B", 7.25))]
    csv = ("timestamp,series_id,value\n" + "\n".join(rows) + "\n").encode()
    url = "/api/v1/predictions/batch"
    response = await client.post(url, headers=account.headers, data={"model_id": naive, "horizon": "2"}, files={"file": ("obs.csv", io.BytesIO(csv), "text/csv")})
    assert response.status_code == 200, response.text
    answers = {r["predictions"][0]["series_id"]: [p["value"] for p in r["predictions"]] for r in response.json()["results"]}
    assert answers == {"A": [301.5, 301.5], "B": [7.25, 7.25]}

    before = await count_predictions(client, account)
    for content, field in (
        (b"when,how_much\n2026-01-01,1\n", "file"),
        (b"timestamp,series_id,value\n2026-01-20T00:00:00,A,lots\n", "row 2"),
        (b"timestamp,series_id,value\nyesterday,A,1\n", "row 2"),
        (b"timestamp,series_id,value\n2026-01-20T00:00:00,A,\n", "row 2"),
        (b"timestamp,value\n", "file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "file"),
    ):
        refused = await client.post(url, headers=account.headers, data={"model_id": naive, "horizon": "2"}, files={"file": ("x.csv", io.BytesIO(content), "text/csv")})
        details = assert_envelope(refused, 422)["details"]
        assert any(field in key for key in details), (content[:40], details)
    # Each says what is wrong, in the field's terms.
    at = (LAST + timedelta(hours=1)).isoformat()
    for content, says in (
        (f"timestamp,series_id,value\n{at},A,nan\n".encode(), {"row 2": "value: Value error, must be a finite number of magnitude at most 1e+100"}),
        (f"timestamp,series_id,value\n{at},B,1\n{at},A,1e999\n".encode(), {"row 3": "value: Value error, must be a finite number of magnitude at most 1e+100"}),
        (b"timestamp,series_id,value\n9999-12-31T23:00:00,A,1\n", {"row 2": "timestamp: Value error, must be between 1677-09-22 and 2262-04-11, the range of the forecasting libraries' timestamps"}),
        (f"timestamp,series_id,value\n{at},A,1\n{at},A,2\n".encode(), {"file": f"observations: Value error, series 'A' is given twice at {at}"}),
    ):
        refused = await client.post(url, headers=account.headers, data={"model_id": naive, "horizon": "2"}, files={"file": ("x.csv", io.BytesIO(content), "text/csv")})
        assert assert_envelope(refused, 422)["details"] == says
    # Series the model does not know are refused however many there are (more than a
    # direct batch's would be a job).
    unknown = "timestamp,series_id,value\n" + "".join(f"{at},S{k},1\n" for k in range(DIRECT_BATCH + 10))
    refused = await client.post(url, headers=account.headers, data={"model_id": naive, "horizon": "2"}, files={"file": ("x.csv", io.BytesIO(unknown.encode()), "text/csv")})
    assert "the model was not fitted on series ['S0']" in assert_envelope(refused, 422)["details"]["requests.0.observations"]
    assert_envelope(await client.post(url, headers=account.headers, data={"model_id": naive, "horizon": "0"}, files={"file": ("x.csv", io.BytesIO(csv), "text/csv")}), 422)
    assert await count_predictions(client, account) == before


async def test_a_batch_body_that_is_neither_valid_json_nor_a_valid_form_is_refused(client: httpx.AsyncClient, account: Account, model_id: str, settings: Settings) -> None:
    """POST /batch reads JSON or a multipart form; each malformed, missing or oversized
    part is a 4xx envelope naming it, and nothing is recorded."""
    url, before = "/api/v1/predictions/batch", await count_predictions(client, account)
    csv = ("timestamp,series_id,value\n" + f"{(LAST + timedelta(hours=1)).isoformat()},A,1\n").encode()
    sent = lambda **kwargs: client.post(url, headers=account.headers, **kwargs)  # noqa: E731
    json_type = {**account.headers, "content-type": "application/json"}
    assert assert_envelope(await client.post(url, headers=json_type, content=b'{"model_id": '), 400)["details"]["body"].startswith("Invalid JSON")
    assert "requests" in assert_envelope(await sent(json={"model_id": model_id}), 422)["details"]
    assert "model_id" in assert_envelope(await sent(json={"model_id": "../etc", "requests": [{"horizon": 1}]}), 422)["details"]
    assert assert_envelope(await sent(json=[1, 2]), 422)["details"] == {"body": "Input should be an object"}
    # JSON at this upload route still has the JSON limit; the file has the upload one.
    padding = {"model_id": model_id, "requests": [{"horizon": 1}], "pad": "x" * settings.max_body_bytes}
    assert assert_envelope(await sent(json=padding), 413)["details"] == {"max_bytes": settings.max_body_bytes}
    form = {"model_id": model_id, "horizon": "1"}
    assert assert_envelope(await sent(data=form, files={"other": ("x.csv", io.BytesIO(csv), "text/csv")}), 422)["details"] == {"file": "a CSV file of observations is required"}
    assert set(assert_envelope(await sent(data={"horizon": "lots"}, files={"file": ("x.csv", io.BytesIO(csv), "text/csv")}), 422)["details"]) == {"model_id", "horizon"}
    assert "horizon" in assert_envelope(await sent(data={**form, "horizon": "10001"}, files={"file": ("x.csv", io.BytesIO(csv), "text/csv")}), 422)["details"]
    two = [("file", ("a.csv", io.BytesIO(csv), "text/csv")), ("file", ("b.csv", io.BytesIO(csv), "text/csv"))]
    assert assert_envelope(await sent(data=form, files=two), 400)["error"] == "Too many files. Maximum number of files is 1."
    broken = {**account.headers, "content-type": "multipart/form-data; boundary=xyz"}
    truncated = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nno end"
    assert assert_envelope(await client.post(url, headers=broken, content=truncated), 422)["details"] == {"file": "a CSV file of observations is required"}
    assert_envelope(await client.post(url, headers=broken, content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--xyz--\r\n"), 400)
    assert_envelope(await sent(data={**form, "model_id": str(uuid.uuid4())}, files={"file": ("x.csv", io.BytesIO(csv), "text/csv")}), 404)
    assert_envelope(await client.post(url, data=form, files={"file": ("x.csv", io.BytesIO(csv), "text/csv")}), 401)
    assert (await sent(data=form, files={"file": ("x.csv", io.BytesIO(csv), "text/csv")})).status_code == 200
    assert await count_predictions(client, account) == before + 1


async def test_a_damaged_fitted_model_is_a_409_not_a_500(client: httpx.AsyncClient, account: Account, model_id: str, settings: Settings) -> None:
    [fitted] = list(settings.artifacts_dir.rglob(f"{model_id.replace('-', '')}/versions/*/forecaster.pkl"))
    fitted.write_bytes(b"not a pickle at all")
    details = assert_envelope(await predict(client, account, model_id, horizon=1), 409)["details"]
    assert details == {"version": "retrain"}
    assert_envelope(await client.get(f"/api/v1/monitoring/models/{model_id}/drift", headers=account.headers), 409)
    assert (await client.get(f"/api/v1/models/{model_id}/forecast", headers=account.headers)).status_code == 200


async def test_observations_score_every_earlier_prediction_they_reach(client: httpx.AsyncClient, account: Account, model_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of two, one of them scored by the forecast itself: of the five earlier
    # forecasts, the two with the latest spans are scored when it answers, and the
    # scorer thread goes on with the other three.
    monkeypatch.setattr("vur.predictions.scoring.PAGE", 2)
    monkeypatch.setattr("vur.predictions.scoring.INLINE_PAGES", 1)
    earlier = [(await predict(client, account, model_id, horizon=h, series_ids=["A"])).json() for h in (1, 2, 3, 4, 4)]
    step = earlier[0]["predictions"][0]
    observed = [{"series_id": "A", "timestamp": step["timestamp"], "value": step["value"] + 2.0}]
    assert (await predict(client, account, model_id, horizon=1, series_ids=["A"], observations=observed)).status_code == 200

    async def scored_points() -> int:
        stats = (await client.get("/api/v1/predictions/stats", headers=account.headers, params={"model_id": model_id})).json()
        return stats["error"]["scored_points"]

    async def all_scored() -> bool:
        return await scored_points() == 5

    assert await scored_points() >= 2
    await wait_until(all_scored)
    stats = (await client.get("/api/v1/predictions/stats", headers=account.headers, params={"model_id": model_id})).json()
    assert stats["error"]["mae"] == pytest.approx(2.0)


@pytest.mark.parametrize("after_a_page", [False, True])
@pytest.mark.parametrize("bounded", [False, True])
def test_scoring_seeks_through_the_index_of_unscored_spans(database: Database, after_a_page: bool, bounded: bool) -> None:
    """The scoring query states the partial index's condition as the index does: were
    they to drift apart, every request with observations would scan the model's rows.
    Bounded by the model's longest forecast, it seeks a range of spans' ends, not all
    those after the earliest observation."""
    moment = datetime(2026, 1, 1)
    query = scoring._candidates(scoring.PAGE, after_a_page, bounded).params(
        model_id=uuid.uuid4(), earliest=moment, latest=moment, reach=moment + timedelta(days=1), after_ts=moment, after_id=uuid.uuid4()
    )
    with database.engine.connect() as connection:
        sql = query.compile(connection, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # a near-empty table is otherwise scanned
        plan = " ".join(str(row) for row in connection.exec_driver_sql(f"EXPLAIN {'QUERY PLAN ' if connection.dialect.name == 'sqlite' else ''}{sql}").all())
    assert "ix_predictions_unscored_span" in plan, plan
    if bounded:
        assert ("last_ts>? AND last_ts<?" if connection.dialect.name == "sqlite" else "last_ts <=") in plan, plan


@pytest.mark.parametrize(("zone", "first"), [(None, "2026-01-01T00:00:00"), ("Europe/Berlin", "2026-01-01T00:00:00+01:00")])
def test_forecast_points_keep_the_zone_of_their_timestamps(zone: str | None, first: str) -> None:
    import pandas as pd

    from vur.predictions import service

    frame = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.date_range("2026-01-01", periods=2, freq="h", tz=zone), "mean": [1.0, 2.0], "lo-80": [0.5, 1.5], "hi-80": [1.5, 2.5]})
    answer = service.Answer.of(frame, [80])
    assert answer.outputs[0] == {"series_id": "a", "timestamp": first, "value": 1.0, "lower": {"80": 0.5}, "upper": {"80": 1.5}}
    assert answer.first_ts == (datetime(2026, 1, 1) if zone is None else datetime(2025, 12, 31, 23)) and answer.series_count == 1


def test_observed_times_become_the_datetimes_numpy_would_make() -> None:
    """The request's times are converted by way of their microseconds since the epoch (not
    numpy's slow conversion of datetime objects): the same instants, zoned ones in UTC."""
    from datetime import UTC, timezone

    from vur.predictions import service
    from vur.predictions.schemas import Observation

    moments = [datetime(2026, 1, 1, 0, 0, 0, 250), datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2))), datetime(1700, 1, 1, tzinfo=UTC)]
    model = service.ServedModel(uuid.uuid4(), uuid.uuid4(), "forecaster", service.ModelStatus.trained, {})
    columns = service._observation_columns([Observation(timestamp=moment, value=1.0) for moment in moments], model)
    expected = np.array([moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment for moment in moments], dtype="datetime64[ns]")
    assert columns["ds"].dtype == np.dtype("datetime64[ns]") and (columns["ds"] == expected).all()


async def test_a_model_trained_on_zoned_times_forecasts_from_new_observations(client: httpx.AsyncClient, account: Account) -> None:
    """An upload whose times carry an offset is kept as UTC; the model forecasts in naive
    UTC, as requests give their times, and extends its history with them."""
    lines = ["date,value"] + [f"{(START + timedelta(hours=h)).isoformat()}+02:00,{100 + (h % 24)}" for h in range(24 * 7)]
    upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("zoned.csv", io.BytesIO(("\n".join(lines) + "\n").encode()), "text/csv")})
    assert upload.status_code == 201, upload.text
    body = {"dataset_id": upload.json()["dataset_id"], "algorithm": "naive", "date_column": "date", "target_column": "value", "horizon": 4, "validation": {"method": "holdout"}}
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    last_utc = START + timedelta(hours=24 * 7 - 1 - 2)
    served = (await predict(client, account, model_id, horizon=1)).json()["predictions"]
    assert served[0]["timestamp"] == (last_utc + timedelta(hours=1)).isoformat()
    observed = [{"timestamp": (last_utc + timedelta(hours=1)).isoformat() + "Z", "value": 7.5}]
    moved = await predict(client, account, model_id, horizon=2, observations=observed)
    assert moved.status_code == 200, moved.text
    assert [(p["timestamp"], p["value"]) for p in moved.json()["predictions"]] == [((last_utc + timedelta(hours=k)).isoformat(), 7.5) for k in (2, 3)]
