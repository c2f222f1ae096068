"""Predicting with a model trained on exogenous columns: it forecasts from the future
values the request gives, at every step of every series asked for, and refuses (422,
naming what is missing) a request without them."""

from __future__ import annotations

import io

import httpx
import pytest

from tests.conftest import Account, assert_envelope
from tests.forecasting.test_exogenous import LEVEL, POINTS, driven, driven_dataset, drivers, stamp
from tests.forecasting.test_test_split import trained
from vur.predictions.schemas import DIRECT_BATCH

pytestmark = pytest.mark.anyio

AHEAD = [2.0, 9.5, 0.5, 7.25, 5.0, 1.0]


def future(first: int, values: list[float]) -> list[dict]:
    return [{"timestamp": stamp(first + k), "values": {"x": x}} for k, x in enumerate(values)]


async def test_future_values_drive_the_forecast(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await driven_dataset(client, account)
    model_id = await trained(client, account, {"dataset_id": dataset, "algorithm": "linear", "hyperparameters": LEVEL, "horizon": 6, "levels": [80]})
    url = f"/api/v1/models/{model_id}/predict"

    answer = await client.post(url, headers=account.headers, json={"horizon": 6, "exogenous": future(POINTS, AHEAD)})
    assert answer.status_code == 200, answer.text
    points = answer.json()["predictions"]
    assert [p["timestamp"][:19] for p in points] == [stamp(POINTS + k) for k in range(6)]
    for k, (point, x) in enumerate(zip(points, AHEAD, strict=True)):
        assert point["value"] == pytest.approx(driven(POINTS + k, x), abs=0.75), (k, point)
        assert point["lower"]["80"] < point["value"] < point["upper"]["80"]

    # From a newer observation, the forecast starts after it and needs x from there on.
    observed = {"horizon": 3, "observations": [{"timestamp": stamp(POINTS), "value": driven(POINTS, 2.0)}], "exogenous": future(POINTS + 1, AHEAD[1:4])}
    moved = (await client.post(url, headers=account.headers, json=observed)).json()["predictions"]
    assert [p["timestamp"][:19] for p in moved] == [stamp(POINTS + k) for k in (1, 2, 3)]
    assert [p["value"] for p in moved] == pytest.approx([driven(POINTS + k, x) for k, x in zip((1, 2, 3), AHEAD[1:4], strict=True)], abs=0.75)


async def test_missing_or_unknown_future_values_are_422(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await driven_dataset(client, account)
    model_id = await trained(client, account, {"dataset_id": dataset, "algorithm": "linear", "hyperparameters": LEVEL, "horizon": 6, "validation": {"method": "holdout"}})
    refused = [
        ({"horizon": 6}, "future values of ['x']"),
        ({"horizon": 6, "exogenous": future(POINTS, AHEAD[:5])}, f"no value of 'x' for series 'series_1' at {stamp(POINTS + 5)}"),
        ({"horizon": 2, "exogenous": [{"timestamp": stamp(POINTS + k), "values": {"x": 1.0, "price": 2.0}} for k in range(2)]}, "['price'] are not exogenous columns"),
        ({"horizon": 2, "series_ids": ["elsewhere"], "exogenous": future(POINTS, AHEAD[:2])}, "no future values for series ['elsewhere']"),
    ]
    for body, says in refused:
        details = assert_envelope(await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json=body), 422)["details"]
        assert says in details["exogenous"], (body, details)
    # Two values at one step are ambiguous; a time outside pandas' range would wrap around.
    twice = [*future(POINTS, AHEAD[:2]), {"timestamp": stamp(POINTS + 1), "values": {"x": 4.0}}]
    details = assert_envelope(await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json={"horizon": 2, "exogenous": twice}), 422)["details"]
    assert details == {"exogenous": f"Value error, the series is given twice at {stamp(POINTS + 1)}"}, details
    beyond = [{"timestamp": "9999-12-31T23:00:00", "values": {"x": 1.0}}]
    details = assert_envelope(await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json={"horizon": 1, "exogenous": beyond}), 422)["details"]
    assert "must be between 1677-09-22 and 2262-04-11" in details["exogenous.0.timestamp"], details
    # A batch too large to answer at once is refused as one answered at once would be, before a job is queued.
    large = [{"horizon": 6, "exogenous": future(POINTS, AHEAD)}] * DIRECT_BATCH + [refused[1][0]]
    details = assert_envelope(await client.post("/api/v1/predictions/batch", headers=account.headers, json={"model_id": model_id, "requests": large}), 422)["details"]
    assert refused[1][1] in details[f"requests.{DIRECT_BATCH}.exogenous"], details

    # A model without exogenous columns takes none, and needs none.
    naive = await trained(client, account, {"dataset_id": dataset, "algorithm": "naive", "horizon": 6, "validation": {"method": "holdout"}})
    url = f"/api/v1/models/{naive}/predict"
    details = assert_envelope(await client.post(url, headers=account.headers, json={"horizon": 2, "exogenous": future(POINTS, AHEAD[:2])}), 422)["details"]
    assert details == {"exogenous": "this model was trained without exogenous columns"}
    assert (await client.post(url, headers=account.headers, json={"horizon": 2, "series_ids": ["series_1"]})).status_code == 200


async def test_future_values_are_given_in_the_units_of_the_upload(client: httpx.AsyncClient, account: Account) -> None:
    """Preprocessing standardised x before training: the values a request gives are raw,
    and are standardised the same way before the model reads them."""
    dataset = await driven_dataset(client, account)
    child = await client.post(f"/api/v1/datasets/{dataset}/preprocess", headers=account.headers, json={"normalization": {"method": "standard", "columns": ["x"]}})
    assert child.status_code == 201, child.text
    config = {"date_column": "date", "target_column": "value", "feature_columns": ["x"]}
    assert (await client.put(f"/api/v1/datasets/{child.json()['id']}/config", headers=account.headers, json=config)).status_code == 200
    model_id = await trained(client, account, {"dataset_id": child.json()["id"], "algorithm": "linear", "hyperparameters": LEVEL, "horizon": 6, "validation": {"method": "holdout"}})
    answer = await client.post(f"/api/v1/models/{model_id}/predict", headers=account.headers, json={"horizon": 6, "exogenous": future(POINTS, AHEAD)})
    assert answer.status_code == 200, answer.text
    assert [p["value"] for p in answer.json()["predictions"]] == pytest.approx([driven(POINTS + k, x) for k, x in enumerate(AHEAD)], abs=0.75)


async def test_a_csv_batch_gives_future_values_in_rows_without_a_value(client: httpx.AsyncClient, account: Account) -> None:
    """timestamp,value,x: rows with a value are observations, rows without one carry x's
    future values; the forecast follows them as a JSON request's would."""
    dataset = await driven_dataset(client, account)
    model_id = await trained(client, account, {"dataset_id": dataset, "algorithm": "linear", "hyperparameters": LEVEL, "horizon": 3, "validation": {"method": "holdout"}})
    rows = [f"{stamp(POINTS)},{driven(POINTS, 2.0)},2.0"] + [f"{stamp(POINTS + k)},,{x}" for k, x in zip((1, 2, 3), AHEAD[1:4], strict=True)]
    url = "/api/v1/predictions/batch"

    def send(lines: list[str], header: str = "timestamp,value,x") -> object:
        content = (header + "\n" + "\n".join(lines) + "\n").encode()
        return client.post(url, headers=account.headers, data={"model_id": model_id, "horizon": "3"}, files={"file": ("future.csv", io.BytesIO(content), "text/csv")})

    answer = await send(rows)
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert [p["timestamp"][:19] for p in result["predictions"]] == [stamp(POINTS + k) for k in (1, 2, 3)]
    assert [p["value"] for p in result["predictions"]] == pytest.approx([driven(POINTS + k, x) for k, x in zip((1, 2, 3), AHEAD[1:4], strict=True)], abs=0.75)

    for lines, header, says in (
        (rows[:3], "timestamp,value,x", "no value of 'x'"),
        (rows, "timestamp,value,price", "missing columns: ['x']"),
        ([*rows[:3], f"{stamp(POINTS + 3)},,"], "timestamp,value,x", "row 5"),
        ([*rows[:3], f"{stamp(POINTS + 3)},,cheap"], "timestamp,value,x", "row 5"),
    ):
        details = assert_envelope(await send(lines, header), 422)["details"]
        assert any(says in f"{key}: {value}" for key, value in details.items()), (lines, details)


async def test_the_future_values_requests_give_are_judged_for_drift(client: httpx.AsyncClient, account: Account) -> None:
    """Each exogenous column is an input of its own: its given values against the ones it was trained on."""
    dataset = await driven_dataset(client, account)
    model_id = await trained(client, account, {"dataset_id": dataset, "algorithm": "linear", "hyperparameters": LEVEL, "horizon": 6, "validation": {"method": "holdout"}})
    url = f"/api/v1/models/{model_id}/predict"

    async def x_part() -> dict:
        report = (await client.get(f"/api/v1/monitoring/models/{model_id}/drift", headers=account.headers)).json()
        return next(part for part in report["features"] if part["name"] == "x")

    usual = drivers(36, seed=8)  # the distribution it was trained on
    for first in range(0, 36, 6):
        assert (await client.post(url, headers=account.headers, json={"horizon": 6, "exogenous": future(POINTS, usual[first : first + 6])})).status_code == 200
    steady = await x_part()
    assert steady["count"] == 36 and not steady["drifted"], steady
    for _ in range(12):  # far above anything it saw
        assert (await client.post(url, headers=account.headers, json={"horizon": 6, "exogenous": future(POINTS, [100.0 + k for k in range(6)])})).status_code == 200
    moved = await x_part()
    assert moved["count"] == 108 and moved["drifted"] and moved["psi"] > 0.25, moved
