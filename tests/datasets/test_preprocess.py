"""Preprocessing a dataset into a new one: each method's values against hand-computed
expectations, the lineage (parent and fitted steps), the parent left untouched, and
refusals that leave no dataset row and no file behind."""

from __future__ import annotations

import io
import math
import statistics
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from tests.conftest import Account, add_member, assert_envelope, hourly_csv, register
from tests.datasets.test_upload import dataset_count, upload, workspace_files
from vur.datasets.schemas import PreprocessRequest
from vur.settings import Settings

pytestmark = pytest.mark.anyio

# Two stores, four days, rows out of order on purpose: time-based steps must follow each
# store by date, not the file. Missing sales: a 09-06, b 09-05 (b's first day), b 09-07.
SALES = (
    "date,store,sales,price,region,note\n"
    "2024-09-08,b,40,26,north,\n"
    "2024-09-05,a,1,10,north,\n"
    "2024-09-07,b,,24,north,\n"
    "2024-09-06,a,,12,south,\n"
    "2024-09-05,b,,20,south,\n"
    "2024-09-08,a,100,16,,\n"
    "2024-09-07,a,3,14,north,\n"
    "2024-09-06,b,20,22,south,\n"
).encode()
DAYS = ["2024-09-05", "2024-09-06", "2024-09-07", "2024-09-08"]
PRICE = {"a": [10, 12, 14, 16], "b": [20, 22, 24, 26]}
KNOWN_SALES = [1, 3, 100, 20, 40]


@pytest.fixture
async def sales(client: httpx.AsyncClient, account: Account) -> str:
    dataset = (await upload(client, account, SALES, "sales.csv")).json()["dataset_id"]
    config = {"date_column": "date", "target_column": "sales", "series_id_column": "store"}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    return dataset


@pytest.fixture
async def pooled(client: httpx.AsyncClient, account: Account) -> str:
    """SALES with no series id column: statistics are fitted over all rows."""
    dataset = (await upload(client, account, SALES, "sales.csv")).json()["dataset_id"]
    config = {"date_column": "date", "target_column": "sales", "series_id_column": None}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    return dataset


async def stores(client: httpx.AsyncClient, account: Account, content: bytes) -> str:
    """A dataset whose series id column is `store`."""
    dataset = (await upload(client, account, content, "stores.csv")).json()["dataset_id"]
    config = {"date_column": "date", "target_column": "sales", "series_id_column": "store"}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    return dataset


def stores_csv(sales: dict[str, list[float | None]]) -> bytes:
    lines = ["date,store,sales"] + [f"{date(2024, 1, 1) + timedelta(days=i)},{store},{'' if v is None else v}" for store, values in sales.items() for i, v in enumerate(values)]
    return ("\n".join(lines) + "\n").encode()


async def by_store(client: httpx.AsyncClient, account: Account, dataset: str) -> dict[str, list[Any]]:
    """sales per store in date order."""
    found: dict[str, list[Any]] = {}
    for row in sorted(await rows(client, account, dataset), key=lambda r: r["date"]):
        found.setdefault(row["store"], []).append(row["sales"])
    return found


async def preprocess(client: httpx.AsyncClient, account: Account, dataset: str, body: dict) -> httpx.Response:
    return await client.post(f"/api/v1/datasets/{dataset}/preprocess", headers=account.headers, json=body)


async def created(client: httpx.AsyncClient, account: Account, dataset: str, body: dict) -> dict[str, Any]:
    response = await preprocess(client, account, dataset, body)
    assert response.status_code == 201, response.text
    return response.json()


async def rows(client: httpx.AsyncClient, account: Account, dataset: str) -> list[dict[str, Any]]:
    return (await client.get(f"/api/v1/datasets/{dataset}/preview", headers=account.headers, params={"limit": 1000})).json()["rows"]


async def by_store_and_day(client: httpx.AsyncClient, account: Account, dataset: str, column: str) -> dict[str, list[Any]]:
    """A column's values per store in date order, whatever the order of the rows."""
    found = {(row["store"], row["date"][:10]): row[column] for row in await rows(client, account, dataset)}
    return {store: [found.get((store, day), "absent") for day in DAYS] for store in ("a", "b")}


def step(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["steps"] if s["step"] == name)


# --- lineage ------------------------------------------------------------------


def daily_sales_csv(days: int = 60) -> bytes:
    lines = ["date,store,sales"]
    for store, offset in (("a", 0), ("b", 500)):
        for i in range(days):
            value = "" if (store, i) == ("a", 10) else str(offset + 100 + i)
            lines.append(f"{date(2024, 1, 1) + timedelta(days=i)},{store},{value}")
    return ("\n".join(lines) + "\n").encode()


async def test_seed_body_makes_a_new_dataset_and_leaves_the_parent_alone(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    parent = (await upload(client, account, daily_sales_csv(), "daily.csv", name="Daily")).json()["dataset_id"]
    parent_detail = (await client.get(f"/api/v1/datasets/{parent}", headers=account.headers)).json()
    assert parent_detail["parent_id"] is None and parent_detail["steps"] == []
    parent_rows, parent_files = await rows(client, account, parent), workspace_files(settings, account)

    seed = PreprocessRequest.model_config["json_schema_extra"]["examples"][0]
    result = await created(client, account, parent, seed)

    detail = (await client.get(f"/api/v1/datasets/{result['id']}", headers=account.headers)).json()
    assert {k: v for k, v in result.items() if k != "summary"} == detail
    assert detail["parent_id"] == parent and detail["kind"] == "tabular" and detail["name"] == "Daily (preprocessed)"
    assert [s["step"] for s in detail["steps"]] == ["missing_values", "outliers", "normalization", "lag_features", "rolling_features", "seasonal_features"]
    added = ["sales_lag_1", "sales_lag_7", "sales_lag_30", "sales_rolling_mean_7", "sales_rolling_std_7", "sales_rolling_mean_30", "sales_rolling_std_30", "month", "quarter", "day_of_week"]
    assert result["summary"] == {"rows_before": 120, "rows_after": 120, "columns_added": added, "columns_removed": []}
    assert detail["columns"] == ["date", "store", "sales", *added]
    assert detail["config"] == parent_detail["config"] and detail["frequency"] == "D"

    # The scaler's figures invert the target: x = y * scale + center gives back the filled series.
    scaler = step(detail, "normalization")["params"]["sales"]
    assert (scaler["min"], scaler["max"]) == (100, 659) and (scaler["center"], scaler["scale"]) == (100, 559)
    new_rows = await rows(client, account, result["id"])
    a = [r for r in new_rows if r["store"] == "a"]
    assert [round(r["sales"] * scaler["scale"] + scaler["center"], 9) for r in a[:12]] == [100 + i for i in range(10)] + [109, 111]  # the gap forward-filled
    assert a[29]["sales_lag_30"] is None and a[30]["sales_lag_30"] == a[0]["sales"]

    # The parent is unchanged: same rows, same metadata, same files; the child has its own Parquet.
    assert await rows(client, account, parent) == parent_rows
    assert (await client.get(f"/api/v1/datasets/{parent}", headers=account.headers)).json() == parent_detail
    new_files = sorted(set(workspace_files(settings, account)) - set(parent_files))
    assert [p.name for p in new_files] == ["data.parquet"] and result["id"].replace("-", "") == new_files[0].parent.name
    assert set(parent_files) <= set(workspace_files(settings, account))
    assert await dataset_count(client, account) == 2


async def test_deleting_the_parent_keeps_the_child(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    child = (await created(client, account, sales, {"normalization": {"method": "minmax", "columns": ["price"]}}))["id"]
    assert (await client.delete(f"/api/v1/datasets/{sales}", headers=account.headers)).status_code == 204
    detail = (await client.get(f"/api/v1/datasets/{child}", headers=account.headers)).json()
    assert detail["parent_id"] is None and step(detail, "normalization")["params"]["price"]["max"] == 26
    assert len(await rows(client, account, child)) == 8
    download = await client.get(f"/api/v1/datasets/{child}/download", headers=account.headers)
    assert download.status_code == 200 and download.content.startswith(b"PAR1")


# --- missing values -------------------------------------------------------------


@pytest.mark.parametrize(
    "method, extra, expected, fitted",
    [
        # Per store in date order: b's first day has nothing before it, and nothing comes from a.
        ("forward_fill", {}, {"a": [1, 1, 3, 100], "b": [None, 20, 20, 40]}, None),
        ("backward_fill", {}, {"a": [1, 3, 3, 100], "b": [20, 20, 40, 40]}, None),
        ("interpolate", {}, {"a": [1, 2, 3, 100], "b": [None, 20, 30, 40]}, None),
        # Each store's own statistic (a: 1 3 100, b: 20 40); fill_values stay the column's.
        ("mean", {}, {"a": [1, 104 / 3, 3, 100], "b": [30, 20, 30, 40]}, 32.8),
        ("median", {}, {"a": [1, 3, 3, 100], "b": [30, 20, 30, 40]}, 20),
        ("constant", {"value": -1}, {"a": [1, -1, 3, 100], "b": [-1, 20, -1, 40]}, -1),
        ("drop", {}, {"a": [1, "absent", 3, 100], "b": ["absent", 20, "absent", 40]}, None),
    ],
)
async def test_missing_values(client: httpx.AsyncClient, account: Account, sales: str, method: str, extra: dict, expected: dict, fitted: Any) -> None:
    result = await created(client, account, sales, {"missing_values": {"method": method, "columns": ["sales"], **extra}})
    assert await by_store_and_day(client, account, result["id"], "sales") == expected
    params = step(result, "missing_values")["params"]
    assert params["missing"] == {"sales": 3}
    if fitted is not None:
        assert params["fill_values"] == {"sales": pytest.approx(fitted)}
    assert result["summary"]["rows_after"] == (5 if method == "drop" else 8)
    if method == "drop":
        assert params["rows_removed"] == 3


@pytest.mark.parametrize("method, fill", [("mean", 32.8), ("median", 20)])
async def test_mean_and_median_pool_all_rows_without_a_series_column(client: httpx.AsyncClient, account: Account, pooled: str, method: str, fill: float) -> None:
    result = await created(client, account, pooled, {"missing_values": {"method": method, "columns": ["sales"]}})
    assert await by_store_and_day(client, account, result["id"], "sales") == {"a": [1, fill, 3, 100], "b": [fill, 20, fill, 40]}
    assert step(result, "missing_values")["params"] == {"missing": {"sales": 3}, "fill_values": {"sales": pytest.approx(fill)}}


# A store selling about 1000 a day, one selling about 5, one with no sales known at all.
LEVELS = stores_csv({"big": [1000, None, 1010, 990], "small": [5, 6, None, 4], "empty": [None] * 4})


@pytest.mark.parametrize("method, big, small, overall", [("mean", 1000, 5, 3015 / 6), ("median", 1000, 5, (6 + 990) / 2)])
async def test_mean_and_median_fill_each_series_with_its_own(client: httpx.AsyncClient, account: Account, method: str, big: float, small: float, overall: float) -> None:
    dataset = await stores(client, account, LEVELS)
    result = await created(client, account, dataset, {"missing_values": {"method": method, "columns": ["sales"]}})
    # A series with no value at all falls back on the whole column's statistic.
    assert await by_store(client, account, result["id"]) == {"big": [1000, big, 1010, 990], "small": [5, 6, small, 4], "empty": [pytest.approx(overall)] * 4}
    params = step(result, "missing_values")["params"]
    assert params["fill_values"] == {"sales": pytest.approx(overall)} and params["missing"] == {"sales": 6}
    assert params["per_series"] is True and params["series_id_column"] == "store" and params["series_count"] == 3
    assert params["series_fill_values"] == {"sales": {"big": big, "empty": None, "small": small}}  # by id
    assert params["fallback_series"] == {"sales": 1}


async def test_constant_fills_text_columns_too(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    result = await created(client, account, sales, {"missing_values": {"method": "constant", "value": "unknown", "columns": ["region"]}})
    assert (await by_store_and_day(client, account, result["id"], "region"))["a"] == ["north", "south", "north", "unknown"]


# --- outliers -------------------------------------------------------------------


async def test_iqr_clip_bounds(client: httpx.AsyncClient, account: Account, pooled: str) -> None:
    result = await created(client, account, pooled, {"outliers": {"method": "iqr", "columns": ["sales"]}})
    # Known sales 1, 3, 20, 40, 100: q1 = 3, q3 = 40, bounds 3 - 1.5 * 37 and 40 + 1.5 * 37.
    params = step(result, "outliers")["params"]
    assert params["bounds"]["sales"] == {"q1": 3, "q3": 40, "lower": -52.5, "upper": 95.5}
    assert params["threshold"] == 1.5 and params["outliers"] == {"sales": 1} and "per_series" not in params
    assert await by_store_and_day(client, account, result["id"], "sales") == {"a": [1, None, 3, 95.5], "b": [None, 20, None, 40]}


async def test_zscore_remove(client: httpx.AsyncClient, account: Account, pooled: str) -> None:
    result = await created(client, account, pooled, {"outliers": {"method": "zscore", "threshold": 1.5, "action": "remove", "columns": ["sales"]}})
    mean, std = statistics.fmean(KNOWN_SALES), statistics.pstdev(KNOWN_SALES)
    bounds = step(result, "outliers")["params"]["bounds"]["sales"]
    assert bounds["mean"] == pytest.approx(mean) and bounds["std"] == pytest.approx(std)
    assert bounds["upper"] == pytest.approx(mean + 1.5 * std)  # 87.4: 100 is out
    # Rows with no value are not outliers: only a's 100 goes.
    assert await by_store_and_day(client, account, result["id"], "sales") == {"a": [1, None, 3, "absent"], "b": [None, 20, None, 40]}
    assert result["summary"]["rows_after"] == 7 and step(result, "outliers")["params"]["rows_removed"] == 1


# Over all rows the spike of the small store (50) is well within bounds (q1 3.75, q3
# 991.25); per series it is far out. `one` has a single value and `flat` no IQR at all:
# both keep their values.
SPREADS = stores_csv({"big": [1000, 1010, 990, 1005, 995], "small": [5, 6, 4, 5, 50], "one": [7, None, None, None, None], "flat": [3, 3, 3, 3, 300]})


async def test_iqr_bounds_per_series(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await stores(client, account, SPREADS)
    result = await created(client, account, dataset, {"outliers": {"method": "iqr", "columns": ["sales"]}})
    assert await by_store(client, account, result["id"]) == {
        "big": [1000, 1010, 990, 1005, 995],
        "small": [5, 6, 4, 5, 7.5],  # q1 5, q3 6: up to 6 + 1.5
        "one": [7, None, None, None, None],
        "flat": [3, 3, 3, 3, 300],
    }
    params = step(result, "outliers")["params"]
    assert params["bounds"] == {"sales": pytest.approx({"q1": 3.75, "q3": 991.25, "lower": -1477.5, "upper": 2472.5})}  # the whole column's, as before
    assert params["outliers"] == {"sales": 1} and params["per_series"] is True and params["series_count"] == 4
    assert params["series_bounds"] == {
        "sales": {"big": {"q1": 995, "q3": 1005, "lower": 980, "upper": 1020}, "flat": None, "one": None, "small": {"q1": 5, "q3": 6, "lower": 3.5, "upper": 7.5}}
    }
    assert params["untouched_series"] == {"sales": 2}


async def test_zscore_remove_per_series(client: httpx.AsyncClient, account: Account) -> None:
    dataset = await stores(client, account, SPREADS)
    result = await created(client, account, dataset, {"outliers": {"method": "zscore", "threshold": 1.5, "action": "remove", "columns": ["sales"]}})
    # small's 50 and flat's 300 are 2 standard deviations from their series' mean; `one`
    # has no spread. Over all rows neither is out.
    assert await by_store(client, account, result["id"]) == {"big": [1000, 1010, 990, 1005, 995], "small": [5, 6, 4, 5], "one": [7, None, None, None, None], "flat": [3, 3, 3, 3]}
    params = step(result, "outliers")["params"]
    assert params["rows_removed"] == 2 and params["outliers"] == {"sales": 2} and params["untouched_series"] == {"sales": 1}
    small = params["series_bounds"]["sales"]["small"]
    assert small == pytest.approx({"mean": 14, "std": statistics.pstdev([5, 6, 4, 5, 50]), "lower": 14 - 1.5 * small["std"], "upper": 14 + 1.5 * small["std"]})
    assert result["summary"]["rows_after"] == 18


async def test_per_series_figures_are_summed_up_not_listed(client: httpx.AsyncClient, account: Account) -> None:
    # 150 series: the step records how many, and the figures of the first 100 by id only.
    dataset = await stores(client, account, stores_csv({f"s{i:03}": [i, None, i + 2] for i in range(150)}))
    result = await created(client, account, dataset, {"missing_values": {"method": "mean", "columns": ["sales"]}})
    params = step(result, "missing_values")["params"]
    assert params["series_count"] == 150 and params["fallback_series"] == {"sales": 0}
    assert params["series_fill_values"]["sales"] == {f"s{i:03}": i + 1 for i in range(100)}
    assert {row["store"]: row["sales"] for row in await rows(client, account, result["id"]) if row["date"].startswith("2024-01-02")} == {f"s{i:03}": i + 1 for i in range(150)}


# --- normalization --------------------------------------------------------------


@pytest.mark.parametrize(
    "method, fitted, center, scale",
    [
        ("minmax", {"min": 10, "max": 26}, 10, 16),
        ("standard", {"mean": 18, "std": statistics.pstdev(PRICE["a"] + PRICE["b"])}, 18, statistics.pstdev(PRICE["a"] + PRICE["b"])),
        # Linear quantiles of 10 12 14 16 20 22 24 26: q1 = 13.5, q3 = 22.5.
        ("robust", {"median": 18, "q1": 13.5, "q3": 22.5}, 18, 9),
    ],
)
async def test_normalization(client: httpx.AsyncClient, account: Account, sales: str, method: str, fitted: dict, center: float, scale: float) -> None:
    result = await created(client, account, sales, {"normalization": {"method": method, "columns": ["price"]}})
    params = step(result, "normalization")["params"]["price"]
    assert params == pytest.approx({**fitted, "center": center, "scale": scale})
    scaled = await by_store_and_day(client, account, result["id"], "price")
    for store, values in scaled.items():
        assert values == pytest.approx([(p - center) / scale for p in PRICE[store]])
        assert [v * params["scale"] + params["center"] for v in values] == pytest.approx(PRICE[store])
    if method == "minmax":
        assert min(scaled["a"] + scaled["b"]) == 0 and max(scaled["a"] + scaled["b"]) == 1


# --- encoding -------------------------------------------------------------------


async def test_one_hot_encoding(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    result = await created(client, account, sales, {"encoding": {"method": "one_hot", "columns": ["region"]}})
    assert result["summary"]["columns_added"] == ["region_north", "region_south"] and result["summary"]["columns_removed"] == ["region"]
    assert step(result, "encoding")["params"] == {"region": {"categories": ["north", "south"], "columns": ["region_north", "region_south"]}}
    assert (await by_store_and_day(client, account, result["id"], "region_north"))["a"] == [1, 0, 1, 0]  # a's last day has no region
    assert (await by_store_and_day(client, account, result["id"], "region_south"))["a"] == [0, 1, 0, 0]


async def test_ordinal_encoding(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    result = await created(client, account, sales, {"encoding": {"method": "ordinal", "columns": ["region"]}})
    assert step(result, "encoding")["params"] == {"region": {"categories": ["north", "south"]}}
    assert (await by_store_and_day(client, account, result["id"], "region"))["a"] == [0, 1, 0, None]


# --- feature engineering ----------------------------------------------------------


async def test_lags_follow_each_series_in_time_order(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    result = await created(client, account, sales, {"feature_engineering": {"lag_features": {"lags": [1, 2], "columns": ["price"]}}})
    assert result["summary"]["columns_added"] == ["price_lag_1", "price_lag_2"]
    # b's first day gets nothing, not a's last price.
    assert await by_store_and_day(client, account, result["id"], "price_lag_1") == {"a": [None, 10, 12, 14], "b": [None, 20, 22, 24]}
    assert await by_store_and_day(client, account, result["id"], "price_lag_2") == {"a": [None, None, 10, 12], "b": [None, None, 20, 22]}
    assert step(result, "lag_features")["params"] == {"lags": [1, 2], "added": ["price_lag_1", "price_lag_2"], "date_column": "date", "series_id_column": "store"}


async def test_rolling_windows_use_only_past_values(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    body = {"feature_engineering": {"rolling_features": {"windows": [2], "functions": ["mean", "std", "min", "max"], "columns": ["price"]}}}
    result = await created(client, account, sales, body)
    values = {f: await by_store_and_day(client, account, result["id"], f"price_rolling_{f}_2") for f in ("mean", "std", "min", "max")}
    # 09-06 has two values up to itself but only one before it: no full window yet.
    assert values["mean"] == {"a": [None, None, 11, 13], "b": [None, None, 21, 23]}
    assert values["min"]["a"] == [None, None, 10, 12] and values["max"]["a"] == [None, None, 12, 14]
    assert values["std"]["a"][2:] == pytest.approx([statistics.stdev([10, 12]), statistics.stdev([12, 14])])


async def test_differencing_defaults_to_the_target(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    result = await created(client, account, sales, {"feature_engineering": {"differencing": {"periods": [1]}}})
    assert result["summary"]["columns_added"] == ["sales_diff_1"]
    assert await by_store_and_day(client, account, result["id"], "sales_diff_1") == {"a": [None, None, None, 97], "b": [None, None, None, None]}


async def test_calendar_features(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    body = {"feature_engineering": {"seasonal_features": {"extract": ["month", "quarter", "day_of_week", "hour", "week_of_year"]}}}
    result = await created(client, account, sales, body)
    # 2024-09-05 is a Thursday (ISO day 4) of ISO week 36.
    expected = {"month": [9] * 4, "quarter": [3] * 4, "day_of_week": [4, 5, 6, 7], "hour": [0] * 4, "week_of_year": [36] * 4}
    for feature, values in expected.items():
        assert (await by_store_and_day(client, account, result["id"], feature))["b"] == values, feature


async def test_hour_of_hourly_data(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = (await upload(client, account, hourly_csv(tmp_path / "h.csv", hours=30).read_bytes())).json()["dataset_id"]
    result = await created(client, account, dataset, {"feature_engineering": {"seasonal_features": {"extract": ["hour", "day_of_week", "week_of_year"]}}})
    new_rows = await rows(client, account, result["id"])
    assert [r["hour"] for r in new_rows] == [i % 24 for i in range(30)]
    assert {(r["day_of_week"], r["week_of_year"]) for r in new_rows} == {(4, 1), (5, 1)}  # 2026-01-01 is a Thursday of ISO week 1


@pytest.mark.parametrize(
    "country, content, expected",
    [
        ("BR", None, [0, 0, 1, 0]),  # 7 September, Independence Day
        ("US", b"date,value\n2024-07-03,1\n2024-07-04,2\n2024-07-05,3\n", [0, 1, 0]),
    ],
)
async def test_holidays(client: httpx.AsyncClient, account: Account, sales: str, country: str, content: bytes | None, expected: list[int]) -> None:
    dataset = sales if content is None else (await upload(client, account, content)).json()["dataset_id"]
    result = await created(client, account, dataset, {"feature_engineering": {"holiday_features": {"country": country}}})
    new_rows = sorted(await rows(client, account, result["id"]), key=lambda r: r["date"])
    days = sorted({r["date"][:10] for r in new_rows})
    by_day = {r["date"][:10]: r["is_holiday"] for r in new_rows}
    assert [by_day[d] for d in days] == expected
    params = step(result, "holiday_features")["params"]
    assert params["country"] == country and params["years"] == [2024, 2024] and params["holidays"] > 5


async def test_given_date_column_orders_and_dates(client: httpx.AsyncClient, account: Account) -> None:
    content = b"ordered,shipped,amount\n2024-01-05,2024-03-02,5\n2024-01-01,2024-02-01,1\n2024-01-03,2024-04-01,3\n"
    dataset = (await upload(client, account, content)).json()["dataset_id"]
    body = {"date_column": "shipped", "feature_engineering": {"seasonal_features": {"extract": ["month"]}, "lag_features": {"lags": [1], "columns": ["amount"]}}}
    result = await created(client, account, dataset, body)
    new_rows = await rows(client, account, result["id"])
    assert [r["month"] for r in new_rows] == [3, 2, 4]
    assert [r["amount_lag_1"] for r in new_rows] == [1, None, 5]  # in shipping order, not in file order
    assert result["config"]["date_column"] == "shipped"


# --- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, field",
    [
        ('{"missing_values": {"method": ', 400, "body"),
        ({}, 422, "body"),
        ({"colour": "blue"}, 422, "colour"),
        ({"normalization": {"method": "log", "columns": ["price"]}}, 422, "normalization.method"),
        ({"normalization": {"method": "minmax", "columns": "price"}}, 422, "normalization.columns"),
        ({"normalization": {"method": "minmax", "columns": ["ghost"]}}, 422, "normalization.columns"),
        ({"normalization": {"method": "minmax", "columns": ["region"]}}, 422, "normalization.columns"),
        ({"outliers": {"method": "iqr", "threshold": "1.5", "columns": ["sales"]}}, 422, "outliers.threshold"),
        ({"outliers": {"method": "iqr", "action": "winsorize", "columns": ["sales"]}}, 422, "outliers.action"),
        ({"missing_values": {"method": "constant", "columns": ["sales"]}}, 422, "missing_values"),
        ({"missing_values": {"method": "constant", "value": "zero", "columns": ["sales"]}}, 422, "missing_values.value"),
        ({"missing_values": {"method": "mean", "columns": ["sales", "sales"]}}, 422, "missing_values.columns"),
        ({"missing_values": {"method": "interpolate", "columns": ["region"]}}, 422, "missing_values.columns"),
        ({"encoding": {"method": "one_hot", "columns": ["price", "date"]}}, 422, "encoding.columns"),
        ({"feature_engineering": {"lag_features": {"lags": ["7"]}}}, 422, "feature_engineering.lag_features.lags.0"),
        ({"feature_engineering": {"lag_features": {"lags": [0]}}}, 422, "feature_engineering.lag_features.lags.0"),
        ({"feature_engineering": {"lag_features": {"lags": [100_000]}}}, 422, "feature_engineering.lag_features.lags.0"),
        ({"feature_engineering": {"lag_features": {"lags": [1], "columns": ["region"]}}}, 422, "feature_engineering.lag_features.columns"),
        ({"feature_engineering": {"rolling_features": {"windows": [7], "functions": ["median"]}}}, 422, "feature_engineering.rolling_features.functions.0"),
        ({"feature_engineering": {"seasonal_features": {"extract": ["fortnight"]}}}, 422, "feature_engineering.seasonal_features.extract.0"),
        ({"feature_engineering": {"lag_features": {"enabled": False, "lags": [1]}}}, 422, "body"),
        ({"feature_engineering": {"holiday_features": {"country": "XX"}}}, 422, "feature_engineering.holiday_features.country"),
        ({"feature_engineering": {"lag_features": {"lags": [1], "columns": ["price"]}, "differencing": {"columns": ["price_lag_1"]}}}, 422, "feature_engineering.differencing.columns"),
        ({"date_column": "region", "feature_engineering": {"seasonal_features": {"extract": ["month"]}}}, 422, "date_column"),
        # Written, then refused: no row is left, so nothing may stay on disk either.
        ({"missing_values": {"method": "drop", "columns": ["note"]}}, 422, "rows"),
        ({"name": "x" * 70_000, "normalization": {"method": "minmax", "columns": ["price"]}}, 413, None),
    ],
)
async def test_refusals_leave_nothing_behind(
    client: httpx.AsyncClient, account: Account, sales: str, settings: Settings, body: dict | str, status: int, field: str | None
) -> None:
    files, count = workspace_files(settings, account), await dataset_count(client, account)
    url = f"/api/v1/datasets/{sales}/preprocess"
    if isinstance(body, str):
        response = await client.post(url, headers={**account.headers, "Content-Type": "application/json"}, content=body)
    else:
        response = await client.post(url, headers=account.headers, json=body)
    details = assert_envelope(response, status)["details"]
    if field is not None:
        assert field in details, details
    assert workspace_files(settings, account) == files
    assert await dataset_count(client, account) == count


async def test_errors_name_the_column(client: httpx.AsyncClient, account: Account, sales: str) -> None:
    unknown = assert_envelope(await preprocess(client, account, sales, {"normalization": {"method": "minmax", "columns": ["price", "ghost"]}}), 422)
    assert "ghost" in unknown["details"]["normalization.columns"] and "price" not in unknown["details"]["normalization.columns"]
    text = assert_envelope(await preprocess(client, account, sales, {"outliers": {"method": "iqr", "columns": ["region"]}}), 422)
    assert "region" in text["details"]["outliers.columns"]


@pytest.mark.parametrize("column", ["empty", "nan", "infinite"])
async def test_nothing_to_fit_is_refused(client: httpx.AsyncClient, account: Account, column: str) -> None:
    # Numeric columns with no usable value (NaN counts as missing); Parquet keeps their type.
    frame = pl.DataFrame({"empty": pl.Series([None, None, None], dtype=pl.Float64), "nan": [math.nan] * 3, "infinite": [1.0, math.inf, 3.0]})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    dataset = (await upload(client, account, buffer.getvalue(), "numbers.parquet")).json()["dataset_id"]
    for body in ({"normalization": {"method": "minmax", "columns": [column]}}, {"outliers": {"method": "zscore", "columns": [column]}}):
        field = f"{next(iter(body))}.columns"
        details = assert_envelope(await preprocess(client, account, dataset, body), 422)["details"]
        assert details[field] == f"no values, or infinite ones, in: ['{column}']", details
    assert await dataset_count(client, account) == 1


async def test_date_features_need_a_date_column(client: httpx.AsyncClient, account: Account) -> None:
    dataset = (await upload(client, account, b"x,y\n1,2\n3,4\n5,6\n")).json()["dataset_id"]
    for block, body in (("seasonal_features", {"extract": ["month"]}), ("holiday_features", {"country": "BR"})):
        response = await preprocess(client, account, dataset, {"feature_engineering": {block: body}})
        assert f"feature_engineering.{block}" in assert_envelope(response, 422)["details"]
    # Without a date the rows are the order of time: lags still work.
    result = await created(client, account, dataset, {"feature_engineering": {"lag_features": {"lags": [1], "columns": ["y"]}}})
    assert [r["y_lag_1"] for r in await rows(client, account, result["id"])] == [None, 2, 4]


async def test_another_workspace_and_viewers_cannot_preprocess(client: httpx.AsyncClient, account: Account, sales: str, settings: Settings) -> None:
    body = {"normalization": {"method": "minmax", "columns": ["price"]}}
    intruder = await register(client)
    assert_envelope(await preprocess(client, intruder, sales, body), 404)
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await preprocess(client, viewer, sales, body), 403)
    assert await dataset_count(client, account) == 1 and await dataset_count(client, intruder) == 0
    assert workspace_files(settings, intruder) == []
