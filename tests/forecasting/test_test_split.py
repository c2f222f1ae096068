"""The dataset's time_series split over HTTP: its test part is held out of validation and
tuning, forecast by the model fitted on train + validation, and scored; the kept model
still forecasts from the end of the whole history."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import Account, assert_envelope
from tests.core.test_smoke_slice import wait_for_training
from tests.forecasting.test_training import upload_csv

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1)
POINTS = 100


def stamp(i: int) -> str:
    return (START + timedelta(hours=i)).isoformat()


async def ramp(client: httpx.AsyncClient, account: Account) -> str:
    """value = i at hour i: naive's error at step k of a window is exactly k."""
    return await upload_csv(client, account, ("date,value\n" + "".join(f"{stamp(i)},{i}\n" for i in range(POINTS))).encode())


async def split(client: httpx.AsyncClient, account: Account, dataset: str, train: float, validation: float, test: float, method: str = "time_series") -> dict:
    body = {"train_size": train, "validation_size": validation, "test_size": test, "method": method}
    answer = await client.post(f"/api/v1/datasets/{dataset}/split", headers=account.headers, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def trained(client: httpx.AsyncClient, account: Account, body: dict) -> str:
    train = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert train.status_code == 202, train.text
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    return train.json()["model_id"]


@pytest.mark.parametrize(
    ("sizes", "horizon", "test_points", "test_mae"),
    [
        # Test part 75..99 in windows from 75, 85, 95: errors 1..10, 1..10, 1..5.
        ((0.5, 0.25, 0.25), 10, 25, 125 / 25),
        # 0.1 + 0.2 is 0.30000000000000004 in floating point: hour 30 is validation, as the
        # split endpoint counts. Windows from 31, 41, … 91: six of errors 1..10, then 1..9.
        ((0.1, 0.2, 0.7), 10, 69, 375 / 69),
        # A test part shorter than the horizon is forecast for as many steps as it has.
        ((0.7, 0.25, 0.05), 10, 5, 15 / 5),
    ],
)
async def test_the_test_part_is_forecast_by_the_model_fitted_before_it(
    client: httpx.AsyncClient, account: Account, sizes: tuple[float, float, float], horizon: int, test_points: int, test_mae: float
) -> None:
    dataset = await ramp(client, account)
    parts = (await split(client, account, dataset, *sizes))["parts"]
    assert parts["test"]["rows"] == test_points
    first = POINTS - test_points
    model_id = await trained(client, account, {"dataset_id": dataset, "algorithm": "naive", "horizon": horizon, "levels": [], "validation": {"n_splits": 2}})

    metrics = (await client.get(f"/api/v1/models/{model_id}/metrics", headers=account.headers)).json()
    # Validation: the last two horizons before the test part, never in it.
    assert [f["start"] for f in metrics["folds"]] == [stamp(first - 2 * horizon), stamp(first - horizon)]
    assert metrics["metrics"]["mae"] == (horizon + 1) / 2
    test = metrics["test_metrics"]
    assert test["mae"] == round(test_mae, 6)
    squares = sum(((i - first) % horizon + 1) ** 2 for i in range(first, POINTS))
    assert test["rmse"] == round(math.sqrt(squares / test_points), 6)
    assert test["mase"] == round(test_mae / 24, 6)  # naive's scale: the seasonal-naive error (24 h) of the ramp

    results = (await client.get(f"/api/v1/models/{model_id}/results", headers=account.headers)).json()
    assert max(p["timestamp"] for p in results["validation"]) == stamp(first - 1)
    # Each window starts from the actual value before it, without refitting.
    expected = [(stamp(i), float(i), float(first + (i - first) // horizon * horizon - 1)) for i in range(first, POINTS)]
    assert [(p["timestamp"], p["actual"], p["forecast"]) for p in results["test"]] == expected
    assert results["test_metrics"] == test
    assert results["split"] == {"method": "time_series", "train_size": sizes[0], "validation_size": sizes[1], "test_size": sizes[2]}
    # The kept model was fitted on the whole history.
    assert [(p["timestamp"], p["value"]) for p in results["forecast"]["predictions"][:2]] == [(stamp(POINTS), 99.0), (stamp(POINTS + 1), 99.0)]


async def test_without_a_split_or_with_a_random_one_there_is_no_test(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await ramp(client, account)
    body = {"dataset_id": dataset, "algorithm": "naive", "horizon": 10, "levels": [], "validation": {"n_splits": 2}}
    plain = await trained(client, account, body)
    await split(client, account, dataset, 0.5, 0.25, 0.25, method="random")
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json=body)
    assert configured.status_code == 201, configured.text
    assert "split" not in configured.json()["config"] and "random split is not used" in configured.json()["config"]["notes"][0]
    shuffled = await trained(client, account, body)
    for model_id in (plain, shuffled):
        metrics = (await client.get(f"/api/v1/models/{model_id}/metrics", headers=account.headers)).json()
        assert metrics["test_metrics"] is None and [f["start"] for f in metrics["folds"]] == [stamp(80), stamp(90)]
    results = (await client.get(f"/api/v1/models/{shuffled}/results", headers=account.headers)).json()
    assert results["test"] == [] and results["split"] is None and "random split is not used" in results["details"]["notes"][0]


async def test_series_too_short_before_their_test_part_are_422(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await ramp(client, account)
    body = {"dataset_id": dataset, "algorithm": "naive", "horizon": 24, "validation": {"n_splits": 3}}
    assert (await client.post("/api/v1/models/configure", headers=account.headers, json=body)).status_code == 201
    await split(client, account, dataset, 0.4, 0.1, 0.5)
    details = assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=body), 422)["details"]
    assert "50 points with a target before its test part" in details["horizon"] and "make 74" in details["horizon"]
