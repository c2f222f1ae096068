"""Alerts (raised and cleared by the evaluator, handled by people) and the dashboard's
figures, feed and tasks, all computed from the workspace's records."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv, register
from tests.predictions.test_predictions import HOURS, LAST, predict, train
from tests.predictions.test_streams import SourceTable, register_source, source  # noqa: F401 (a fixture)
from vur.core.db import Database, utcnow
from vur.core.storage import LocalArtifactStore
from vur.jobs import service as jobs
from vur.monitoring.alerts import evaluate
from vur.predictions.models import PredictionStream
from vur.predictions.streams import run_stream_once
from vur.settings import Settings

pytestmark = pytest.mark.anyio


async def alerts_of(client: httpx.AsyncClient, account: Account, **params: str) -> list[dict]:
    response = await client.get("/api/v1/monitoring/alerts", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_model_whose_live_error_passes_its_rule_raises_one_alert(client: httpx.AsyncClient, account: Account, tmp_path: Path, database: Database) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    first = (await predict(client, account, model_id, horizon=2, series_ids=["A"])).json()["predictions"]
    actual = [{"series_id": "A", "timestamp": p["timestamp"], "value": p["value"] + 40} for p in first]
    assert (await predict(client, account, model_id, horizon=1, series_ids=["A"], observations=actual)).status_code == 200

    rule = await client.post("/api/v1/monitoring/alert-rules", headers=account.headers, json={"model_id": model_id, "metric": "mae", "threshold": 25})
    assert rule.status_code == 201, rule.text
    for _ in range(2):  # a condition that lasts is one alert
        with database.session() as session:
            evaluate(session, utcnow())
    raised = await alerts_of(client, account, kind="error_threshold")
    assert len(raised) == 1 and raised[0]["status"] == "open" and raised[0]["subject_id"] == model_id
    assert raised[0]["details"]["value"] == pytest.approx(40.0) and raised[0]["details"]["scored_points"] == 2

    alert_url = f"/api/v1/monitoring/alerts/{raised[0]['id']}"
    stranger = await register(client)
    assert_envelope(await client.post(f"{alert_url}/acknowledge", headers=stranger.headers), 404)
    acknowledged = await client.post(f"{alert_url}/acknowledge", headers=account.headers)
    assert acknowledged.json()["status"] == "acknowledged" and acknowledged.json()["acknowledged_at"]
    assert_envelope(await client.post(f"{alert_url}/acknowledge", headers=account.headers), 409)
    assert (await client.post(f"{alert_url}/resolve", headers=account.headers)).json()["status"] == "resolved"
    assert_envelope(await client.post(f"{alert_url}/resolve", headers=account.headers), 409)

    stats = (await client.get("/api/v1/dashboard/stats", headers=account.headers)).json()
    assert stats["active_alerts"] == 0 and stats["trends"]["new_alerts_today"] == "1"
    tasks = (await client.get("/api/v1/dashboard/tasks", headers=account.headers)).json()["tasks"]
    assert not any(t["type"] == "retrain_model" for t in tasks), "a resolved alert asks for nothing"


async def test_a_stalled_stream_raises_an_alert_that_clears_when_rows_arrive(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings  # noqa: F811
) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    database_id = (await register_source(client, account, source)).json()["id"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]
    later = utcnow() + timedelta(hours=11)  # ten intervals without a row
    with database.session() as session:
        evaluate(session, later)
    stalled = await alerts_of(client, account, kind="stream_stalled")
    assert [(a["status"], a["subject_id"]) for a in stalled] == [("open", stream_id)]
    tasks = (await client.get("/api/v1/dashboard/tasks", headers=account.headers)).json()["tasks"]
    assert any(t["type"] == "check_stream" and t["subject"]["id"] == stream_id for t in tasks)

    source.insert((LAST + timedelta(hours=1), "A", 5.0))
    run_stream_once(database, LocalArtifactStore(settings.artifacts_dir), settings, uuid.UUID(stream_id))
    with database.session() as session:
        evaluate(session, utcnow())
    assert [a["status"] for a in await alerts_of(client, account, kind="stream_stalled")] == ["resolved"]


async def test_a_failed_stream_is_reported_once_in_its_own_words(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database  # noqa: F811
) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    database_id = (await register_source(client, account, source)).json()["id"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]
    with database.session() as session:  # as the scheduler leaves a stream after repeated failures
        stream = session.get(PredictionStream, uuid.UUID(stream_id))
        stream.status, stream.last_error = "failed", "host db.internal is unreachable"
    with database.session() as session:
        evaluate(session, utcnow())
    [alert] = await alerts_of(client, account, kind="stream_failed")
    assert (alert["title"], alert["message"]) == ("Prediction stream failed", "host db.internal is unreachable")
    activity = (await client.get("/api/v1/dashboard/activity", headers=account.headers)).json()["activities"]
    assert [a["message"] for a in activity if a["type"] == "alert_raised"] == ["Prediction stream failed: host db.internal is unreachable"]
    assert [s["id"] for s in (await client.get("/api/v1/monitoring/predictions", headers=account.headers, params={"status": "failed"})).json()] == [stream_id]


async def test_list_filters_take_only_the_values_they_know(client: httpx.AsyncClient, account: Account) -> None:
    for path, params in (("/api/v1/monitoring/predictions", {"status": "bogus"}), ("/api/v1/monitoring/alerts", {"kind": "bogus"}), ("/api/v1/monitoring/alerts", {"status": "loud"})):
        details = assert_envelope(await client.get(path, headers=account.headers, params=params), 422)["details"]
        assert list(details) == list(params), (path, details)
    assert await alerts_of(client, account, kind="drift") == []


async def test_a_failed_job_raises_an_alert_once(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    with database.session() as session:
        job = jobs.enqueue(session, "tests.count", {"steps": 2, "delay": 0.01, "fail_at": 1}, workspace_id=uuid.UUID(account.workspace_id))
        job_id = job.id
    for _ in range(100):
        if (await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)).json()["status"] == "failed":
            break
        await asyncio.sleep(0.1)
    for _ in range(2):
        with database.session() as session:
            evaluate(session, utcnow())
    failed = await alerts_of(client, account, kind="job_failed")
    assert len(failed) == 1 and failed[0]["subject_id"] == str(job_id) and failed[0]["severity"] == "error"
    activity = (await client.get("/api/v1/dashboard/activity", headers=account.headers)).json()["activities"]
    assert {"job_failed", "alert_raised"} <= {a["type"] for a in activity}


async def test_the_dashboard_is_computed_from_the_workspace(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    empty = (await client.get("/api/v1/dashboard/stats", headers=account.headers)).json()
    assert empty == {
        "active_models": 0,
        "average_accuracy": None,
        "total_datasets": 0,
        "active_alerts": 0,
        "trends": {"models_this_month": "+0", "accuracy_vs_last_month": "n/a", "datasets_this_week": "+0", "new_alerts_today": "0"},
    }
    csv = hourly_csv(tmp_path / "idle.csv", hours=HOURS).read_bytes()
    idle = (await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("idle.csv", io.BytesIO(csv), "text/csv")})).json()["dataset_id"]
    model_id = await train(client, account, tmp_path, algorithm="naive")
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()

    stats = (await client.get("/api/v1/dashboard/stats", headers=account.headers)).json()
    assert stats["active_models"] == 1 and stats["total_datasets"] == 2
    assert stats["average_accuracy"] == pytest.approx(round(100 - model["metrics"]["smape"], 2))
    assert stats["trends"]["models_this_month"] == "+1" and stats["trends"]["datasets_this_week"] == "+2"

    activity = (await client.get("/api/v1/dashboard/activity", headers=account.headers, params={"limit": 5})).json()["activities"]
    assert set(activity[0]) == {"id", "type", "message", "timestamp", "status"}
    assert [a["type"] for a in activity][:1] == ["model_trained"] and sum(a["type"] == "dataset_uploaded" for a in activity) == 2
    assert activity == sorted(activity, key=lambda a: a["timestamp"], reverse=True)

    tasks = (await client.get("/api/v1/dashboard/tasks", headers=account.headers)).json()["tasks"]
    assert [t["subject"]["id"] for t in tasks if t["type"] == "train_on_dataset"] == [idle]
    assert (await client.post(f"/api/v1/models/{model_id}/archive", headers=account.headers)).status_code == 200
    assert (await client.get("/api/v1/dashboard/stats", headers=account.headers)).json()["active_models"] == 0

    other = await register(client)
    assert (await client.get("/api/v1/dashboard/stats", headers=other.headers)).json()["total_datasets"] == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"metric": "mape", "threshold": 1}, 422, "metric"),
        ({"threshold": -1}, 422, "threshold"),
        ({"threshold": "high"}, 422, "threshold"),
        ({"threshold": 1, "window_hours": 0}, 422, "window_hours"),
        ({"threshold": 1, "query": "DROP"}, 422, "query"),
        ({"threshold": 1, "model_id": "not-a-uuid"}, 422, "model_id"),
    ],
)
async def test_bad_rules_are_refused(client: httpx.AsyncClient, account: Account, body: dict, status: int, field: str) -> None:
    full = {"model_id": str(uuid.uuid4()), **body}
    details = assert_envelope(await client.post("/api/v1/monitoring/alert-rules", headers=account.headers, json=full), status)["details"]
    assert any(field in key for key in details), details
    assert (await client.get("/api/v1/monitoring/alert-rules", headers=account.headers)).json() == []


async def test_rules_name_a_model_of_the_workspace(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    stranger = await register(client)
    assert_envelope(await client.post("/api/v1/monitoring/alert-rules", headers=stranger.headers, json={"model_id": model_id, "threshold": 1}), 404)
    assert_envelope(await client.get("/api/v1/monitoring/alerts", headers=account.headers, params={"status": "loud"}), 422)
    rule = (await client.post("/api/v1/monitoring/alert-rules", headers=account.headers, json={"model_id": model_id, "threshold": 1})).json()
    assert_envelope(await client.delete(f"/api/v1/monitoring/alert-rules/{rule['id']}", headers=stranger.headers), 404)
    assert (await client.delete(f"/api/v1/monitoring/alert-rules/{rule['id']}", headers=account.headers)).status_code == 204


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shifted_one() -> None:
    import numpy as np

    from vur.monitoring.drift import population_stability_index

    rng = np.random.default_rng(0)
    reference = rng.normal(100, 10, 5000)
    assert population_stability_index(reference, rng.normal(100, 10, 2000)) < 0.02
    assert population_stability_index(reference, rng.normal(130, 10, 2000)) > 1.0
    assert population_stability_index(np.full(100, 3.0), np.full(50, 3.0)) == pytest.approx(0.0)


async def test_a_deployed_model_whose_data_drifts_raises_an_alert(client: httpx.AsyncClient, account: Account, tmp_path: Path, database: Database, settings: Settings) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    url = f"/api/v1/monitoring/models/{model_id}/drift"
    calm = (await client.get(url, headers=account.headers)).json()
    assert calm["drifted"] is False and calm["training_points"] == 2 * HOURS and [p["count"] for p in calm["features"]] == [0, 0]

    # A day of series A is forecast, then arrives 500 above the usual level; then the next day.
    def arriving(points: list[dict]) -> list[dict]:
        return [{"series_id": "A", "timestamp": p["timestamp"], "value": 600.0 + i % 3} for i, p in enumerate(points)]

    first_day = arriving((await predict(client, account, model_id, horizon=24, series_ids=["A"])).json()["predictions"])
    second_day = arriving((await predict(client, account, model_id, horizon=24, series_ids=["A"], observations=first_day)).json()["predictions"])
    assert (await predict(client, account, model_id, horizon=1, series_ids=["A"], observations=first_day + second_day)).status_code == 200
    report = (await client.get(url, headers=account.headers)).json()
    observed = next(p for p in report["features"] if p["name"] == "observed")
    assert observed["count"] == 48 and observed["psi"] > 0.25 and observed["ks_pvalue"] < 0.01 and report["drifted"] is True

    store = LocalArtifactStore(settings.artifacts_dir)
    with database.session() as session:
        evaluate(session, utcnow(), store)
    assert await alerts_of(client, account, kind="drift") == [], "only deployed models are watched"
    assert (await client.post(f"/api/v1/models/{model_id}/deploy", headers=account.headers)).status_code == 200
    with database.session() as session:
        evaluate(session, utcnow(), store)
    drifted = await alerts_of(client, account, kind="drift")
    assert len(drifted) == 1 and drifted[0]["subject_id"] == model_id and "observed PSI" in drifted[0]["message"]


async def test_the_same_forecast_asked_again_and_again_is_no_drift(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    """Each forecast point counts once (its newest forecast), as each training point does:
    sixty requests for the same two hours say no more than one."""
    model_id = await train(client, account, tmp_path, algorithm="seasonal_naive", hyperparameters={"season_length": 24})
    assert (await predict(client, account, model_id, horizon=24)).status_code == 200  # a day of both series
    for _ in range(3):
        batch = {"model_id": model_id, "requests": [{"horizon": 2, "series_ids": ["A"]}] * 20}
        assert (await client.post("/api/v1/predictions/batch", headers=account.headers, json=batch)).status_code == 200
    report = (await client.get(f"/api/v1/monitoring/models/{model_id}/drift", headers=account.headers)).json()
    predicted = next(p for p in report["features"] if p["name"] == "predicted")
    assert predicted["count"] == 48 and not predicted["drifted"] and report["drifted"] is False, report
