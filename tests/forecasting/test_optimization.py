"""Hyperparameter search: an Optuna study over a search space checked against the
algorithm's schema, every trial a backtest, the best parameters applied and trained."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, assert_envelope, hourly_csv, register
from tests.core.test_smoke_slice import wait_for_training
from tests.forecasting.test_training import upload_csv

pytestmark = pytest.mark.anyio


@pytest.fixture
async def model_id(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> str:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "h.csv", hours=24 * 10).read_bytes())
    body = {"dataset_id": dataset, "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 6}, "horizon": 24, "validation": {"n_splits": 2}}
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json=body)
    assert configured.status_code == 201, configured.text
    return configured.json()["model_id"]


async def test_a_grid_search_finds_the_true_season_and_trains_with_it(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    body = {"method": "grid", "iterations": 50, "search_space": {"season_length": {"type": "int", "choices": [6, 12, 24, 25]}}, "metric": "val_mae"}
    started = await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body)
    assert started.status_code == 202, started.text
    status = await wait_for_training(client, account, model_id)
    assert status["status"] == "completed", status
    assert sum(line.startswith("Trial ") for line in status["logs"]) == 4  # the grid has 4 points
    results = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()
    study = results["optimization"]
    # The series has a 24-hour cycle: only season_length 24 follows it.
    assert study["best_params"] == {"season_length": 24}
    assert sorted(t["params"]["season_length"] for t in study["trials"]) == [6, 12, 24, 25]
    assert study["best_value"] == min(t["value"] for t in study["trials"])
    assert results["hyperparameters"]["season_length"] == 24
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()
    assert model["hyperparameters"]["season_length"] == 24


async def test_r2_is_maximized_when_no_objective_is_given(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    body = {"method": "grid", "search_space": {"season_length": {"type": "int", "choices": [6, 24]}}, "metric": "r2"}
    assert (await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body)).status_code == 202
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
    study = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()["optimization"]
    assert study["objective"] == "maximize"
    assert study["best_params"] == {"season_length": 24}
    assert study["best_value"] == max(t["value"] for t in study["trials"])


async def test_default_search_space_with_bayesian_trials(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "two.csv", hours=24 * 12, series=["a", "b"]).read_bytes())
    body = {
        "dataset_id": dataset,
        "algorithm": "linear",
        "hyperparameters": {"lags": 6, "seasonal_lags": 2},
        "horizon": 12,
        "levels": [],
        "validation": {"n_splits": 1},
        "optimization": {"enabled": True, "method": "bayesian", "iterations": 4, "metric": "rmse"},
    }
    train = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert train.status_code == 202, train.text
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    study = (await client.get(f"/api/v1/models/{train.json()['model_id']}/results", headers=account.headers)).json()["optimization"]
    assert set(study["search_space"]) == {"lags", "difference", "alpha"}
    assert len(study["trials"]) == 4
    finished = [t for t in study["trials"] if t["value"] is not None]
    assert finished and study["best_value"] == min(t["value"] for t in finished)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"search_space": {"hidden_units": {"type": "int", "min": 10, "max": 200}}}, "search_space.hidden_units"),
        ({"search_space": {"season_length": {"type": "int", "min": 0, "max": 48}}}, "search_space.season_length"),
        ({"search_space": {"season_length": {"type": "float", "min": 1, "max": 48}}}, "search_space.season_length"),
        ({"search_space": {"season_length": {"type": "int", "min": 30, "max": 2}}}, "search_space.season_length"),
        ({"search_space": {"season_length": {"type": "int"}}}, "search_space.season_length"),
        ({"search_space": {"season_length": {"type": "int", "choices": [24, "daily"]}}}, "search_space.season_length"),
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48}}, "metric": "accuracy"}, "metric"),
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48}}, "method": "annealing"}, "method"),
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48}}, "iterations": 0}, "iterations"),
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48}}, "objective": "sideways"}, "objective"),
        # Minimizing r2, or maximizing an error, would search for the worst parameters.
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48}}, "metric": "r2", "objective": "minimize"}, "objective"),
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48}}, "metric": "val_mae", "objective": "maximize"}, "objective"),
        ({"search_space": {"season_length": {"type": "int", "min": 1, "max": 48, "step": 2}}}, "step"),
        ({}, "search_space"),  # seasonal naive has nothing to tune by default
    ],
)
async def test_bad_searches_are_422_and_start_nothing(client: httpx.AsyncClient, account: Account, model_id: str, body: dict, field: str) -> None:
    response = await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body)
    details = assert_envelope(response, 422)["details"]
    assert any(field in key for key in details), details
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()
    assert model["status"] == "configured" and "optimization" not in model["config"]
    assert (await client.get("/api/v1/jobs", headers=account.headers)).json() == []


async def test_a_grid_needs_choices_for_floats(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = await upload_csv(client, account, hourly_csv(tmp_path / "h.csv", hours=24 * 10).read_bytes())
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": dataset, "algorithm": "linear", "hyperparameters": {"lags": 6, "seasonal_lags": 2}})
    model_id = configured.json()["model_id"]
    body = {"method": "grid", "search_space": {"alpha": {"type": "float", "min": 0.1, "max": 10}}}
    details = assert_envelope(await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body), 422)["details"]
    assert "grid" in details["search_space.alpha"]
    body = {"method": "random", "search_space": {"alpha": {"type": "float", "min": 0, "max": 10, "log": True}}}
    details = assert_envelope(await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body), 422)["details"]
    assert "log" in details["search_space.alpha"]


async def test_malformed_foreign_and_busy(client: httpx.AsyncClient, account: Account, model_id: str) -> None:
    raw = await client.post(f"/api/v1/models/{model_id}/optimize", headers={**account.headers, "Content-Type": "application/json"}, content=b"{not json")
    assert_envelope(raw, 400)
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=["a"]), 422)
    stranger = await register(client)
    body = {"search_space": {"season_length": {"type": "int", "choices": [12, 24]}}}
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/optimize", headers=stranger.headers, json=body), 404)
    assert (await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body)).status_code == 202
    assert_envelope(await client.post(f"/api/v1/models/{model_id}/optimize", headers=account.headers, json=body), 409)
    assert (await wait_for_training(client, account, model_id))["status"] == "completed"
