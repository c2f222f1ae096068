"""The thin slice end to end: upload a CSV, train a seasonal-naive forecaster, read it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, hourly_csv

pytestmark = pytest.mark.anyio


async def wait_for_training(client: httpx.AsyncClient, account: Account, model_id: str, timeout: float = 120) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = (await client.get(f"/api/v1/models/{model_id}/training/status", headers=account.headers)).json()
        if status["status"] in ("completed", "failed", "cancelled"):
            return status
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.3)


async def test_upload_train_forecast(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    csv_path = hourly_csv(tmp_path / "hourly.csv")
    with csv_path.open("rb") as handle:
        upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("hourly.csv", handle, "text/csv")})
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    assert dataset["detected_types"] == {"date": "datetime", "value": "numeric"}
    assert dataset["frequency"] == "h"
    assert dataset["rows_count"] == 24 * 21

    train = await client.post(
        "/api/v1/models/train",
        headers=account.headers,
        json={"dataset_id": dataset["dataset_id"], "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 24},
    )
    assert train.status_code == 202, train.text
    status = await wait_for_training(client, account, train.json()["model_id"])
    assert status["status"] == "completed", status
    assert status["progress"] == 100
    # A daily sine with a slight trend: the seasonal naive misses only by the trend (0.01/h * 24h).
    assert status["metrics"]["mae"] == pytest.approx(0.24, abs=1e-6)

    forecast = (await client.get(f"/api/v1/models/{train.json()['model_id']}/forecast", headers=account.headers)).json()
    assert len(forecast["predictions"]) == 24
    first = forecast["predictions"][0]
    assert first["timestamp"] == "2026-01-22T00:00:00"
    assert first["lower"]["80"] < first["value"] < first["upper"]["80"]
