"""Series with gaps train: steps without a row and values missing between observations
are filled (and said so), series without values are left out (and named), and rows off
the frequency's grid are refused at configure."""

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


def _csv(rows: list[tuple[str, int, float | None]]) -> bytes:
    lines = ["date,series,value"] + [f"{(START + timedelta(hours=hour)).isoformat()},{uid},{'' if value is None else value}" for uid, hour, value in rows]
    return ("\n".join(lines) + "\n").encode()


def _cycle(hour: int) -> float:
    return round(100 + 10 * math.sin(2 * math.pi * hour / 24), 4)


@pytest.mark.parametrize("algorithm", ["lightgbm", "sarima"])
async def test_a_series_with_gaps_trains_on_its_filled_grid(client: httpx.AsyncClient, account: Account, algorithm: str) -> None:
    hours = 24 * 10
    dropped = set(range(100, 110)) | {150}  # steps without a row
    blank = {30, 31, 200}  # rows without a value
    rows = [("a", h, None if h in blank else _cycle(h)) for h in range(hours) if h not in dropped]
    rows += [("b", h, _cycle(h)) for h in range(hours)] + [("c", h, None) for h in range(hours)]
    dataset = await upload_csv(client, account, _csv(rows))
    body = {"dataset_id": dataset, "algorithm": algorithm, "horizon": 12, "series_id_column": "series", "target_column": "value", "date_column": "date"}
    hyperparameters = {"lightgbm": {"lags": 12, "seasonal_lags": 2}, "sarima": {"p": 1, "d": 0, "q": 0, "P": 0, "D": 1, "Q": 0, "season_length": 24}}
    body["hyperparameters"] = hyperparameters[algorithm]
    trained = await client.post("/api/v1/models/train", headers=account.headers, json=body)
    assert trained.status_code == 202, trained.text
    model_id = trained.json()["model_id"]
    notes = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()["config"]["notes"]
    assert any("14 missing point(s) inside 1 series" in note for note in notes), notes
    assert any("1 series have no complete row" in note and "'c'" in note for note in notes), notes
    status = await wait_for_training(client, account, model_id)
    assert status["status"] == "completed", status
    assert any("14 missing point(s)" in line for line in status["logs"])
    forecast = (await client.get(f"/api/v1/models/{model_id}/forecast", headers=account.headers)).json()["predictions"]
    assert sorted({p["series_id"] for p in forecast}) == ["a", "b"]
    # Filled along the daily cycle's line, series a forecasts its cycle as b does.
    a, b = ([p["value"] for p in forecast if p["series_id"] == uid] for uid in ("a", "b"))
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 2.0


@pytest.mark.parametrize(("extra", "said"), [(("a", 5.5, 1.0), "off the 'h' grid"), (("a", 7, 1.0), "two rows at")])
async def test_rows_off_the_grid_are_refused_at_configure(client: httpx.AsyncClient, account: Account, extra: tuple, said: str) -> None:
    uid, hour, value = extra
    rows = [("a", h, _cycle(h)) for h in range(24 * 5)] + [("b", h, _cycle(h)) for h in range(24 * 5)]
    lines = _csv(rows).decode().splitlines() + [f"{(START + timedelta(hours=hour)).isoformat()},{uid},{value}"]
    dataset = await upload_csv(client, account, ("\n".join(lines) + "\n").encode())
    body = {"dataset_id": dataset, "algorithm": "naive", "horizon": 6, "series_id_column": "series", "target_column": "value", "date_column": "date"}
    refused = assert_envelope(await client.post("/api/v1/models/configure", headers=account.headers, json=body), 422)
    assert said in refused["details"]["date_column"] and "series 'a'" in refused["details"]["date_column"]
    assert (await client.get("/api/v1/models", headers=account.headers)).json() == []
