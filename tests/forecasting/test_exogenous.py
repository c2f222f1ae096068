"""Exogenous feature columns over HTTP: the lag-feature regressors read the dataset's
numeric feature columns (their values in each validation window come from the data),
other algorithms leave them aside, and a model that needs future values has no
forecast of its own beyond the data."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import Account, assert_envelope
from tests.forecasting.test_test_split import trained
from tests.forecasting.test_training import upload_csv

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1)
POINTS = 24 * 20
# No differencing: the target is a function of this hour's x, not of its change.
LEVEL = {"difference": "none", "lags": 24}


def driven(i: int, x: float) -> float:
    """The target at hour i: three times x plus a small daily cycle."""
    return round(50 + 3 * x + 0.5 * math.sin(2 * math.pi * i / 24), 4)


def drivers(count: int, seed: int = 7) -> list[float]:
    generator = random.Random(seed)
    return [round(generator.uniform(0, 10), 3) for _ in range(count)]


def stamp(i: int) -> str:
    return (START + timedelta(hours=i)).isoformat()


async def driven_dataset(client: httpx.AsyncClient, account: Account) -> str:
    """date, x, tag (text), value; the dataset's feature columns are x and tag."""
    rows = "".join(f"{stamp(i)},{x},{'ab'[i % 2]},{driven(i, x)}\n" for i, x in enumerate(drivers(POINTS)))
    dataset = await upload_csv(client, account, ("date,x,tag,value\n" + rows).encode())
    config = {"date_column": "date", "target_column": "value", "feature_columns": ["x", "tag"]}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    return dataset


async def test_feature_columns_are_checked_and_kept_per_algorithm(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await driven_dataset(client, account)

    async def config(**body: object) -> dict:
        answer = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": dataset, "horizon": 24, **body})
        assert answer.status_code == 201, answer.text
        return answer.json()["config"]

    regressor = await config(algorithm="lightgbm")
    assert regressor["exogenous"] == ["x"] and regressor["notes"] == ["feature_columns ['tag'] are not numeric and are not used"]
    statistical = await config(algorithm="seasonal_naive")
    assert "exogenous" not in statistical
    assert statistical["notes"] == ["feature_columns ['x', 'tag'] are not used: seasonal_naive takes no exogenous columns (lightgbm, xgboost, random_forest and linear do)"]
    assert "exogenous" not in await config(algorithm="linear", feature_columns=[])
    for columns, problem in ((["nope"], "not columns of the dataset"), (["value"], "already serve as")):
        body = {"dataset_id": dataset, "algorithm": "xgboost", "horizon": 24, "feature_columns": columns}
        details = assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=body), 422)["details"]
        assert problem in details["feature_columns"], details


@pytest.mark.parametrize("algorithm", ["lightgbm", "linear"])
async def test_an_exogenous_column_that_drives_the_target_is_learnt(client: httpx.AsyncClient, account: Account, algorithm: str) -> None:
    dataset = await driven_dataset(client, account)
    body = {"dataset_id": dataset, "algorithm": algorithm, "hyperparameters": LEVEL, "horizon": 24, "validation": {"n_splits": 2}}
    with_x = await trained(client, account, body)
    without = await trained(client, account, {**body, "feature_columns": []})
    mae = {}
    for model_id in (with_x, without):
        mae[model_id] = (await client.get(f"/api/v1/models/{model_id}/metrics", headers=account.headers)).json()["metrics"]["mae"]
    # x spreads the target over 30 units; knowing it leaves little but the daily cycle.
    assert mae[with_x] < 1.0 < 5.0 < mae[without], mae

    refused = assert_envelope(await client.get(f"/api/v1/models/{with_x}/forecast", headers=account.headers), 409)
    assert refused["details"] == {"exogenous": ["x"]} and "/predict" in refused["error"]
    results = (await client.get(f"/api/v1/models/{with_x}/results", headers=account.headers)).json()
    assert results["forecast"]["predictions"] == [] and results["forecast"]["exogenous"] == ["x"]
    assert results["details"]["exogenous"] == ["x"] and results["details"]["notes"] == ["feature_columns ['tag'] are not numeric and are not used"]
    # Both rank the driving column first (ridge by its standardized coefficient).
    assert next(iter(results["details"]["feature_importance"])) == "x"
    plain = (await client.get(f"/api/v1/models/{without}/forecast", headers=account.headers)).json()
    assert len(plain["predictions"]) == 24 and plain["exogenous"] == []
