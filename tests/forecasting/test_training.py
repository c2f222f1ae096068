"""Training runs of the thin slice: the catalogue, good runs, refused configurations and
runs that fail in the job (and say why)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv, register
from tests.core.test_smoke_slice import wait_for_training
from vur.core.db import Database
from vur.forecasting import service
from vur.registry.models import ModelStatus, RegisteredModel
from vur.settings import Settings

pytestmark = pytest.mark.anyio


async def upload_csv(client: httpx.AsyncClient, account: Account, content: bytes) -> str:
    response = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("d.csv", io.BytesIO(content), "text/csv")})
    assert response.status_code == 201, response.text
    return response.json()["dataset_id"]


@pytest.fixture
async def dataset_id(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> str:
    return await upload_csv(client, account, hourly_csv(tmp_path / "h.csv", hours=24 * 10).read_bytes())


async def test_catalogue_lists_parameter_schemas(client: httpx.AsyncClient, account: Account) -> None:
    catalogue = (await client.get("/api/v1/models/algorithms", headers=account.headers)).json()
    assert set(catalogue) == {"classical", "machine_learning", "deep_learning"}
    seasonal = next(a for a in catalogue["classical"] if a["id"] == "seasonal_naive")
    assert seasonal["parameters"]["season_length"] == {
        "type": "int",
        "default": 24,
        "min": 1,
        "max": 10_000,
        "description": "Observations per season (24 for hourly data with a daily cycle)",
    }


@pytest.mark.parametrize(
    ("overrides", "bad_field"),
    [
        ({"algorithm": "telepathy"}, "algorithm"),
        ({"hyperparameters": {"season_length": "daily"}}, "season_length"),
        ({"hyperparameters": {"season_length": 0}}, "season_length"),
        ({"hyperparameters": {"season_length": True}}, "season_length"),
        ({"hyperparameters": {"seasons": 3}}, "seasons"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": "12"}, "horizon"),
        ({"levels": [80, 150]}, "levels"),
        ({"target_column": "date"}, "target_column"),
        ({"target_column": "missing"}, "target_column"),
        ({"date_column": "value"}, "date_column"),
        ({"unexpected": 1}, "unexpected"),
        ({"algorithm": "lightgbm", "hyperparameters": {"learning_rate": 5}}, "learning_rate"),
        ({"algorithm": "lightgbm", "hyperparameters": {"difference": "twice"}}, "difference"),
        ({"algorithm": "auto", "hyperparameters": {"ensemble_size": 9}}, "ensemble_size"),
    ],
)
async def test_bad_configurations_are_422_naming_the_field(
    client: httpx.AsyncClient, account: Account, dataset_id: str, overrides: dict, bad_field: str
) -> None:
    body = {"dataset_id": dataset_id, "algorithm": "seasonal_naive", "horizon": 24, **overrides}
    response = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    details = assert_envelope(response, 422)["details"]
    assert any(bad_field in key for key in details), details
    models = await client.get("/api/v1/models", headers=account.headers)
    assert models.json() == [], "a refused configuration must not leave a model behind"


async def test_another_workspaces_dataset_is_404(client: httpx.AsyncClient, dataset_id: str) -> None:
    stranger = await register(client)
    response = await client.post("/api/v1/models/train", headers=stranger.headers, json={"dataset_id": dataset_id, "algorithm": "naive"})
    assert_envelope(response, 404)


async def test_what_the_data_cannot_support_is_422_before_any_job(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    short = await upload_csv(client, account, hourly_csv(tmp_path / "short.csv", hours=40).read_bytes())
    body = {"dataset_id": short, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 24}
    details = assert_envelope(await client.post("/api/v1/models/train", headers=account.headers, json=body), 422)["details"]
    assert "40 points" in details["horizon"] and "make 97" in details["horizon"]  # 3 windows of 24 + a season of 24 + 1
    lagged = {"dataset_id": short, "algorithm": "lightgbm", "horizon": 2, "validation": {"method": "holdout"}}
    assert "horizon" in assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=lagged), 422)["details"]
    # What statsforecast needs before it can fit: the seasonal ARIMA's conditioning points, ETS's more than its parameters and 4.
    tiny = await upload_csv(client, account, hourly_csv(tmp_path / "tiny.csv", hours=12).read_bytes())
    for algorithm, hyperparameters, needs in (("sarima", {"season_length": 7}, 25), ("ets", {"season_length": 7}, 11)):
        body = {"dataset_id": tiny, "algorithm": algorithm, "hyperparameters": hyperparameters, "horizon": 2, "validation": {"method": "holdout"}}
        refused = assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=body), 422)["details"]
        assert f"the {needs} points {algorithm} needs" in refused["horizon"], refused
    empty = await upload_csv(client, account, b"date,value,other\n" + b"".join(f"2026-01-01T{h:02d}:00:00,,{h}\n".encode() for h in range(24)))
    body = {"dataset_id": empty, "algorithm": "naive", "target_column": "other", "horizon": 2}
    assert (await client.post("/api/v1/models/configure", headers=account.headers, json=body)).status_code == 201
    body["target_column"] = "value"
    refused = assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=body), 422)["details"]
    assert "target_column" in refused, refused
    assert len((await client.get("/api/v1/models", headers=account.headers)).json()) == 1


async def test_a_library_failure_fails_the_job_with_its_message(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    lines = ["date,value"] + [f"2026-01-{1 + h // 24:02d}T{h % 24:02d}:00:00,{-5 + (h % 7)}" for h in range(24 * 10)]
    dataset = await upload_csv(client, account, ("\n".join(lines) + "\n").encode())
    body = {"dataset_id": dataset, "algorithm": "ets", "hyperparameters": {"error": "M", "trend": "N", "seasonality": "N"}, "horizon": 12}
    train = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert train.status_code == 202, train.text
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "failed"
    assert "Inappropriate model for data with negative or zero values" in status["error"]
    model = (await client.get(f"/api/v1/models/{train.json()['model_id']}", headers=account.headers)).json()
    assert model["status"] == "failed"
    assert_envelope(await client.get(f"/api/v1/models/{model['id']}/forecast", headers=account.headers), 409)


async def test_several_series_are_forecast_separately(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "multi.csv", hours=24 * 7, series=["a", "b", "c"]).read_bytes())
    train = await client.post("/api/v1/models/train", headers=account.headers, json={"dataset_id": dataset, "algorithm": "naive", "horizon": 6, "levels": [90]})
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    forecast = (await client.get(f"/api/v1/models/{train.json()['model_id']}/forecast", headers=account.headers)).json()
    assert forecast["levels"] == [90]
    assert sorted({p["series_id"] for p in forecast["predictions"]}) == ["a", "b", "c"]
    assert len(forecast["predictions"]) == 18
    # The naive forecast repeats each series' last value.
    assert len({round(p["value"], 6) for p in forecast["predictions"] if p["series_id"] == "a"}) == 1


@pytest.mark.parametrize(("algorithm", "hyperparameters"), [("auto_ets", {"season_length": 24}), ("theta", {"season_length": 24})])
async def test_statistical_models_train_through_the_job(
    client: httpx.AsyncClient, account: Account, dataset_id: str, algorithm: str, hyperparameters: dict
) -> None:
    train = await client.post(
        "/api/v1/models/train",
        headers=account.headers,
        json={"dataset_id": dataset_id, "algorithm": algorithm, "hyperparameters": hyperparameters, "horizon": 12},
    )
    assert train.status_code == 202, train.text
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    # The series is a clean daily sine: a seasonal model misses by little.
    assert status["metrics"]["mae"] < 2
    model = (await client.get(f"/api/v1/models/{train.json()['model_id']}", headers=account.headers)).json()
    assert model["algorithm"] == algorithm and model["hyperparameters"]["season_length"] == 24
    forecast = (await client.get(f"/api/v1/models/{model['id']}/forecast", headers=account.headers)).json()
    assert len(forecast["predictions"]) == 12


async def test_a_regressor_trains_through_the_job_with_intervals(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "two.csv", hours=24 * 14, series=["a", "b"]).read_bytes())
    body = {"dataset_id": dataset, "algorithm": "lightgbm", "hyperparameters": {"lags": 12, "seasonal_lags": 2}, "horizon": 12, "levels": [80]}
    train = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert train.status_code == 202, train.text
    model_id = train.json()["model_id"]
    status = await wait_for_training(client, account, model_id)
    assert status["status"] == "completed", status
    assert status["metrics"]["mae"] < 2, status["metrics"]
    forecast = (await client.get(f"/api/v1/models/{model_id}/forecast", headers=account.headers)).json()
    assert len(forecast["predictions"]) == 24
    assert all(p["lower"]["80"] <= p["value"] <= p["upper"]["80"] for p in forecast["predictions"])
    results = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()
    assert {"mlforecast", "lightgbm"} <= set(results["versions"])


async def test_auto_reports_its_candidates_and_choices(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "three.csv", hours=24 * 10, series=["a", "b", "c"]).read_bytes())
    train = await client.post("/api/v1/models/train", headers=account.headers, json={"dataset_id": dataset, "algorithm": "auto", "horizon": 12, "levels": []})
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    details = (await client.get(f"/api/v1/models/{train.json()['model_id']}/results", headers=account.headers)).json()["details"]
    assert "seasonal_naive" in details["candidates"]
    assert sum(details["chosen_for_series"].values()) == 3 * 3  # three series, the three best each
    assert status["metrics"]["mae"] < 2


async def test_configure_then_train_with_rolling_validation(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    body = {
        "dataset_id": dataset_id,
        "algorithm": "seasonal_naive",
        "hyperparameters": {"season_length": 24},
        "validation": {"method": "time_series_split", "n_splits": 4},
        "optimization": {"enabled": False},
        "metrics": ["mae", "mase", "r2"],
        "horizon": 12,
    }
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json=body)
    assert configured.status_code == 201, configured.text
    model_id = configured.json()["model_id"]
    assert configured.json()["status"] == "configured"
    assert (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()["status"] == "configured"

    started = await client.post(f"/api/v1/models/{model_id}/train", headers=account.headers)
    assert started.status_code == 202, started.text
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/train", headers=account.headers), 409)
    status = await wait_for_training(client, account, model_id)
    assert status["status"] == "completed", status
    assert set(status["metrics"]) == {"mae", "mase", "r2"}
    assert [line.split(":")[0] for line in status["logs"] if line.startswith("Fold")] == ["Fold 1/4", "Fold 2/4", "Fold 3/4", "Fold 4/4"]
    job = (await client.get(f"/api/v1/jobs/{started.json()['job_id']}", headers=account.headers)).json()
    assert len(job["result"]["folds"]) == 4
    # The trend is 0.01 per hour: a season-old value misses by 0.24 in every window.
    assert all(fold["metrics"]["mae"] == pytest.approx(0.24, abs=1e-6) for fold in job["result"]["folds"])
    assert status["metrics"]["r2"] > 0.99

    retrained = await client.post(f"/api/v1/models/{model_id}/train", headers=account.headers)
    assert retrained.status_code == 202 and retrained.json()["job_id"] != started.json()["job_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"


@pytest.mark.parametrize(
    ("overrides", "bad_field"),
    [
        ({"optimization": {"enabled": True, "method": "bayesian", "iterations": 10}}, "optimization.search_space"),
        ({"validation": {"method": "time_series_split", "n_splits": 0}}, "validation.n_splits"),
        ({"validation": {"method": "kfold"}}, "validation.method"),
        ({"metrics": ["rmse", "accuracy"]}, "metrics"),
        ({"metrics": []}, "metrics"),
    ],
)
async def test_configure_refuses_what_it_cannot_honour(client: httpx.AsyncClient, account: Account, dataset_id: str, overrides: dict, bad_field: str) -> None:
    body = {"dataset_id": dataset_id, "algorithm": "naive", **overrides}
    details = assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=body), 422)["details"]
    assert any(key.startswith(bad_field) for key in details), details


async def test_metrics_results_and_delete(client: httpx.AsyncClient, account: Account, dataset_id: str, settings: Settings) -> None:
    train = await client.post(
        "/api/v1/models/train",
        headers=account.headers,
        json={"dataset_id": dataset_id, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 6, "validation": {"n_splits": 2}},
    )
    model_id = train.json()["model_id"]
    assert_envelope(await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers), 409)  # still training
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"

    metrics = (await client.get(f"/api/v1/models/{model_id}/metrics", headers=account.headers)).json()
    assert [f["fold"] for f in metrics["folds"]] == [1, 2]
    assert metrics["metrics"]["mae"] == pytest.approx(0.24, abs=1e-6)

    results = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()
    window = results["validation"]
    assert len(window) == 6
    assert all(p["residual"] == pytest.approx(p["actual"] - p["forecast"]) for p in window)
    assert window[-1]["timestamp"] == "2026-01-10T23:00:00"  # the latest window ends the history
    assert results["fit_seconds"] >= 0 and results["predict_seconds"] > 0 and "statsforecast" in results["versions"]
    assert len(results["forecast"]["predictions"]) == 6

    folder = settings.artifacts_dir / "models" / account.workspace_id.replace("-", "") / model_id.replace("-", "")
    (version,) = (folder / "versions").iterdir()
    assert sorted(p.name for p in version.iterdir()) == ["forecast.json", "forecaster.pkl", "results.json"]
    assert (await client.delete(f"/api/v1/models/{model_id}", headers=account.headers)).status_code == 204
    assert_envelope(await client.get(f"/api/v1/models/{model_id}", headers=account.headers), 404)
    assert not folder.exists()


async def test_a_training_model_cannot_be_deleted(client: httpx.AsyncClient, account: Account, dataset_id: str, database: Database) -> None:
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": dataset_id, "algorithm": "naive"})
    model_id = configured.json()["model_id"]
    # Held in `training` (as while its job runs) without racing a real, quick job.
    with database.session() as session:
        session.get(RegisteredModel, uuid.UUID(model_id)).status = ModelStatus.training
    assert "cancel" in assert_envelope(await client.delete(f"/api/v1/models/{model_id}", headers=account.headers), 409)["error"]
    with database.session() as session:
        session.get(RegisteredModel, uuid.UUID(model_id)).status = ModelStatus.configured
    assert (await client.delete(f"/api/v1/models/{model_id}", headers=account.headers)).status_code == 204


async def test_the_status_of_an_ended_job_shows_the_metrics_it_committed(client: httpx.AsyncClient, account: Account, dataset_id: str, database: Database) -> None:
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json={"dataset_id": dataset_id, "algorithm": "naive"})).json()["model_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    # The status request reads the model, then its job; a job that ends in between
    # committed the model's metrics after the first read. Played here in that order.
    with database.session() as reader:
        model = reader.get(RegisteredModel, uuid.UUID(model_id))
        trained_metrics = dict(model.metrics)
        with database.session() as job:
            job.get(RegisteredModel, uuid.UUID(model_id)).metrics = {**trained_metrics, "mae": 123.0}
        assert service.training_status(reader, model).metrics == {**trained_metrics, "mae": 123.0}


async def test_plots_of_a_trained_regressor(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "two.csv", hours=24 * 14, series=["a", "b"]).read_bytes())
    # Not differenced: the trees then have a daily cycle to split on.
    body = {"dataset_id": dataset, "algorithm": "lightgbm", "hyperparameters": {"lags": 12, "seasonal_lags": 2, "difference": "none"}, "horizon": 12, "levels": [80, 95]}
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    for kind in ("forecast", "residuals", "importance"):
        png = await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers, params={"kind": kind, "series_id": "b"})
        assert png.status_code == 200, png.text
        assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers, params={"kind": "forecast", "format": "svg"})
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    importance = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()["details"]["feature_importance"]
    assert abs(sum(importance.values()) - 1) < 1e-3 and list(importance.values()) == sorted(importance.values(), reverse=True)

    assert_envelope(await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers, params={"kind": "pie"}), 422)
    assert_envelope(await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers, params={"format": "gif"}), 422)
    missing = await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers, params={"series_id": "zzz"})
    assert "series_id" in assert_envelope(missing, 422)["details"]
    stranger = await register(client)
    assert_envelope(await client.get(f"/api/v1/models/{model_id}/plot", headers=stranger.headers), 404)


async def test_plots_say_what_a_model_cannot_draw(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": dataset_id, "algorithm": "naive", "horizon": 6})
    model_id = configured.json()["model_id"]
    assert_envelope(await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers), 409)  # not trained yet
    await client.post(f"/api/v1/models/{model_id}/train", headers=account.headers)
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    assert (await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers)).status_code == 200
    refused = await client.get(f"/api/v1/models/{model_id}/plot", headers=account.headers, params={"kind": "importance"})
    assert "kind" in assert_envelope(refused, 422)["details"]


async def test_a_rescaled_target_is_forecast_in_its_original_units(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    steps = {"normalization": {"method": "standard", "columns": ["value"]}}
    child = await client.post(f"/api/v1/datasets/{dataset_id}/preprocess", headers=account.headers, json=steps)
    assert child.status_code == 201, child.text
    twice = await client.post(f"/api/v1/datasets/{child.json()['id']}/preprocess", headers=account.headers, json={"normalization": {"method": "minmax", "columns": ["value"]}})
    assert twice.status_code == 201, twice.text
    results = {}
    for source in (dataset_id, twice.json()["id"]):
        body = {"dataset_id": source, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 12, "levels": [80]}
        model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
        assert (await wait_for_training(client, account, model_id))["status"] == "completed"
        results[source] = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()
    original, rescaled = results[dataset_id], results[twice.json()["id"]]
    # Seasonal naive commutes with rescaling: undone twice, the numbers are the upload's own.
    for mine, theirs in zip(rescaled["forecast"]["predictions"], original["forecast"]["predictions"], strict=True):
        assert mine["value"] == pytest.approx(theirs["value"], rel=1e-9)
        assert mine["lower"]["80"] == pytest.approx(theirs["lower"]["80"], rel=1e-6)
    assert rescaled["metrics"] == pytest.approx(original["metrics"], rel=1e-6)
    assert rescaled["validation"][0]["actual"] == pytest.approx(original["validation"][0]["actual"], rel=1e-9)


async def test_a_retraining_leaves_a_deployed_model_deployed(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    body = {"dataset_id": dataset_id, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 6}
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    assert (await client.post(f"/api/v1/models/{model_id}/deploy", headers=account.headers)).json()["status"] == "deployed"
    # A retraining that succeeds: still deployed, serving the new version.
    assert (await client.post(f"/api/v1/models/{model_id}/train", headers=account.headers)).status_code == 202
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()
    assert model["status"] == "deployed"
    # One that fails (every trial's season is longer than the series): deployed, serving the version it had.
    search = {"method": "grid", "search_space": {"season_length": {"type": "int", "choices": [5000]}}}
    assert (await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=search)).status_code == 202
    status = await wait_for_training(client, account, model_id)
    assert status["status"] == "failed" and "every trial failed" in status["error"], status
    assert (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()["status"] == "deployed"
    answer = await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json={"horizon": 6})
    assert answer.status_code == 200 and answer.json()["model_version"] == 2, answer.text


async def test_a_model_without_its_dataset_is_not_retrained(client: httpx.AsyncClient, account: Account, dataset_id: str) -> None:
    body = {"dataset_id": dataset_id, "algorithm": "naive", "horizon": 6}
    model_id = (await client.post("/api/v1/models/train", headers=account.headers, json=body)).json()["model_id"]
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    assert (await client.delete(f"/api/v1/datasets/{dataset_id}", headers=account.headers, params={"force": True})).status_code == 204
    refused = assert_envelope(await client.post(f"/api/v1/models/{model_id}/train", headers=account.headers), 409)
    assert "no dataset" in refused["error"]
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()
    assert model["status"] == "trained" and (await client.get("/api/v1/jobs", headers=account.headers)).json()[0]["status"] == "succeeded"


@pytest.mark.parametrize(("algorithm", "hyperparameters"), [("prophet", {"changepoint_prior_scale": float("nan")}), ("linear", {"alpha": float("inf")})])
async def test_numbers_that_are_not_finite_are_refused(client: httpx.AsyncClient, account: Account, dataset_id: str, algorithm: str, hyperparameters: dict) -> None:
    name = next(iter(hyperparameters))
    headers = {**account.headers, "Content-Type": "application/json"}
    body = {"dataset_id": dataset_id, "algorithm": algorithm, "hyperparameters": hyperparameters, "horizon": 6}
    # As JavaScript and Python write them: NaN, Infinity (httpx would refuse to).
    refused = await client.post("/api/v1/models/configure", headers=headers, content=json.dumps(body))
    assert "finite" in assert_envelope(refused, 422)["details"][name]
    configured = (await client.post("/api/v1/models/configure", headers=account.headers, json={**body, "hyperparameters": {}})).json()["model_id"]
    search = {"method": "random", "search_space": {name: {"type": "float", "choices": [float("nan")]}}}
    assert_envelope(await client.post(f"/api/v1/models/{configured}/optimize", headers=headers, content=json.dumps(search)), 422)
