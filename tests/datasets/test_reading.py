"""Reading a dataset back: preview pages, statistics, downloads, usage, configuration,
validation and deletion."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.conftest import Account, add_member, assert_envelope, hourly_csv, register
from tests.datasets.test_upload import upload, workspace_files
from vur.datasets import profile
from vur.settings import Settings

pytestmark = pytest.mark.anyio

MIXED = (
    "date,store,sales,price,note\n"
    "2026-01-01,a,10,1.5,=HYPERLINK(\"http://x\")\n"
    "2026-01-02,a,12,1.5,ok\n"
    "2026-01-03,a,,1.6,@SUM(A1)\n"
    "2026-01-04,a,15,1.7,plain\n"
    "2026-01-01,b,20,2.5,-2+3\n"
    "2026-01-02,b,20,2.5,x\n"
    "2026-01-04,b,20,2.5,y\n"
    "2026-01-04,b,21,2.5,dup\n"
).encode()


@pytest.fixture
async def mixed(client: httpx.AsyncClient, account: Account) -> str:
    response = await upload(client, account, MIXED, "mixed.csv")
    assert response.status_code == 201, response.text
    return response.json()["dataset_id"]


async def test_preview_pages_columns_sort_and_filter(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    url = f"/api/v1/datasets/{mixed}/preview"
    first = (await client.get(url, headers=account.headers, params={"limit": 3})).json()
    assert first["total_rows"] == 8 and first["total_pages"] == 3 and len(first["rows"]) == 3
    assert first["rows"][0]["date"].startswith("2026-01-01") and first["rows"][0]["sales"] == 10
    last = (await client.get(url, headers=account.headers, params={"limit": 3, "page": 3})).json()
    assert len(last["rows"]) == 2
    picked = (await client.get(url, headers=account.headers, params={"columns": "store,sales"})).json()
    assert picked["columns"] == ["store", "sales"] and set(picked["rows"][0]) == {"store", "sales"}
    ordered = (await client.get(url, headers=account.headers, params={"sort": "sales", "order": "desc", "columns": "sales"})).json()
    assert [r["sales"] for r in ordered["rows"]] == [21, 20, 20, 20, 15, 12, 10, None]
    filtered = (await client.get(url, headers=account.headers, params=[("filter", "store:eq:b"), ("filter", "sales:gt:20")])).json()
    assert filtered["total_rows"] == 1 and filtered["rows"][0]["sales"] == 21


@pytest.mark.parametrize(
    "params",
    [{"columns": "nope"}, {"sort": "nope"}, {"filter": "nope:eq:1"}, {"filter": "sales:like:1"}, {"filter": "sales:gt:abc"}, {"limit": 0}, {"page": 0}, {"limit": "x"}],
)
async def test_preview_refuses_bad_queries(client: httpx.AsyncClient, account: Account, mixed: str, params: dict) -> None:
    response = await client.get(f"/api/v1/datasets/{mixed}/preview", headers=account.headers, params=params)
    assert response.status_code in (400, 422)
    assert_envelope(response, response.status_code)


async def test_statistics(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    await client.put(f"/api/v1/datasets/{mixed}/config", headers=account.headers, json={"series_id_column": "store"})
    stats = (await client.get(f"/api/v1/datasets/{mixed}/statistics", headers=account.headers)).json()
    sales = stats["columns"]["sales"]
    assert (sales["count"], sales["missing"]) == (7, 1)
    assert sales["min"] == 10 and sales["max"] == 21 and sales["median"] == 20
    assert sum(sales["histogram"]["counts"]) == 7
    assert stats["columns"]["store"]["top_values"] == [{"value": "a", "count": 4}, {"value": "b", "count": 4}]  # ties by value
    assert stats["correlations"]["sales"]["price"] == pytest.approx(pl.DataFrame({"s": [10, 12, 15, 20, 20, 20, 21], "p": [1.5, 1.5, 1.7, 2.5, 2.5, 2.5, 2.5]}).select(pl.corr("s", "p")).item())
    series = stats["time_series"]
    assert series["series_lengths"] == {"a": 4, "b": 4}
    assert series["duplicated_timestamps"] == 1
    assert series["gaps"] == 1  # b skips 2026-01-03
    assert series["frequency"] == "D"


async def test_download_formats(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    original = await client.get(f"/api/v1/datasets/{mixed}/download", headers=account.headers)
    assert original.status_code == 200 and original.content == MIXED
    assert 'filename="mixed.csv"' in original.headers["content-disposition"]
    parquet = await client.get(f"/api/v1/datasets/{mixed}/download", headers=account.headers, params={"format": "parquet"})
    assert pl.read_parquet(io.BytesIO(parquet.content)).height == 8
    csv = (await client.get(f"/api/v1/datasets/{mixed}/download", headers=account.headers, params={"format": "csv"})).text
    # Formula-looking cells come back as text, never as something a spreadsheet would run.
    assert "'=HYPERLINK" in csv and "'@SUM(A1)" in csv and "'-2+3" in csv
    assert "\n=" not in csv and ",=" not in csv
    assert_envelope(await client.get(f"/api/v1/datasets/{mixed}/download", headers=account.headers, params={"format": "exe"}), 422)


async def test_config_checks_every_name_and_role(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    url = f"/api/v1/datasets/{mixed}/config"
    good = await client.put(url, headers=account.headers, json={"date_column": "date", "target_column": "sales", "series_id_column": "store", "feature_columns": ["price"], "exclude_columns": ["note"]})
    assert good.status_code == 200, good.text
    assert good.json()["config"]["feature_columns"] == ["price"]
    cases = [
        ({"target_column": "missing"}, "target_column"),
        ({"target_column": "store"}, "target_column"),
        ({"date_column": "sales"}, "date_column"),
        ({"feature_columns": ["ghost"]}, "feature_columns"),
        ({"exclude_columns": ["sales"], "target_column": "sales"}, "exclude_columns"),
        ({"date_column": 5}, "date_column"),
        ({"colour": "blue"}, "colour"),
    ]
    for body, field in cases:
        details = assert_envelope(await client.put(url, headers=account.headers, json=body), 422)["details"]
        assert field in details, (body, details)
    unchanged = (await client.get(f"/api/v1/datasets/{mixed}", headers=account.headers)).json()
    assert unchanged["config"]["target_column"] == "sales"


async def test_validate_reports_errors_and_warnings(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    await client.put(f"/api/v1/datasets/{mixed}/config", headers=account.headers, json={"series_id_column": "store", "target_column": "sales"})
    report = (await client.post(f"/api/v1/datasets/{mixed}/validate", headers=account.headers, json={"horizon": 2, "season_length": 1})).json()
    codes = {i["code"] for i in report["errors"]} | {i["code"] for i in report["warnings"]}
    assert report["valid"] is False
    assert {"duplicated_timestamps", "missing_target", "gaps", "series_too_short"} <= codes
    duplicated = next(i for i in report["errors"] if i["code"] == "duplicated_timestamps")
    assert duplicated["rows"] == [7, 8]


async def test_validate_accepts_a_clean_series(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = (await upload(client, account, hourly_csv(tmp_path / "h.csv").read_bytes())).json()["dataset_id"]
    report = (await client.post(f"/api/v1/datasets/{dataset}/validate", headers=account.headers, json={"horizon": 24, "season_length": 24})).json()
    assert report == {"valid": True, "errors": [], "warnings": []}


async def test_delete_refuses_while_a_model_uses_it(client: httpx.AsyncClient, account: Account, tmp_path: Path, settings: Settings) -> None:
    dataset = (await upload(client, account, hourly_csv(tmp_path / "h.csv").read_bytes())).json()["dataset_id"]
    await client.post("/api/v1/models/train", headers=account.headers, json={"dataset_id": dataset, "algorithm": "naive", "horizon": 4})
    assert_envelope(await client.delete(f"/api/v1/datasets/{dataset}", headers=account.headers), 409)
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await client.delete(f"/api/v1/datasets/{dataset}", headers=viewer.headers, params={"force": True}), 403)
    assert (await client.delete(f"/api/v1/datasets/{dataset}", headers=account.headers, params={"force": True})).status_code == 204
    assert_envelope(await client.get(f"/api/v1/datasets/{dataset}", headers=account.headers), 404)
    assert workspace_files(settings, account) == []


async def test_usage_counts_only_the_workspace(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    other = await register(client)
    await upload(client, other, MIXED)
    usage = (await client.get("/api/v1/datasets/usage", headers=account.headers)).json()
    assert usage["datasets_count"] == 1 and usage["by_kind"] == {"tabular": 1}
    assert usage["stored_bytes"] > len(MIXED)
    assert [d["id"] for d in usage["recent_uploads"]] == [mixed]


async def test_list_filters_and_pages(client: httpx.AsyncClient, account: Account) -> None:
    for name in ("Sales 2025", "sales_100%", "Energy"):
        assert (await upload(client, account, MIXED, f"{name}.csv", name=name)).status_code == 201
    listed = await client.get("/api/v1/datasets", headers=account.headers, params={"search": "sales"})
    assert sorted(d["name"] for d in listed.json()) == ["Sales 2025", "sales_100%"] and listed.headers["X-Total-Count"] == "2"
    literal = await client.get("/api/v1/datasets", headers=account.headers, params={"search": "100%"})
    assert [d["name"] for d in literal.json()] == ["sales_100%"]
    page = await client.get("/api/v1/datasets", headers=account.headers, params={"limit": 2, "offset": 2})
    assert len(page.json()) == 1 and page.headers["X-Total-Count"] == "3"
    assert_envelope(await client.get("/api/v1/datasets", headers=account.headers, params={"kind": "spreadsheet"}), 422)
    assert_envelope(await client.get("/api/v1/datasets", headers=account.headers, params={"limit": 0}), 422)


async def test_time_series_split_cuts_each_series_in_order(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    content = hourly_csv(tmp_path / "s.csv", hours=100, series=["a", "b"]).read_bytes()
    dataset = (await upload(client, account, content)).json()["dataset_id"]
    body = {"train_size": 0.7, "validation_size": 0.15, "test_size": 0.15, "method": "time_series", "shuffle": False}
    answer = await client.post(f"/api/v1/datasets/{dataset}/split", headers=account.headers, json=body)
    assert answer.status_code == 200, answer.text
    parts = answer.json()["parts"]
    assert answer.json()["series_count"] == 2
    assert [parts[p]["rows"] for p in ("train", "validation", "test")] == [140, 30, 30]
    # Each series keeps its order: training ends (hour 69) before validation starts (hour 70).
    assert parts["train"]["start"].startswith("2026-01-01T00:00") and parts["train"]["end"].startswith("2026-01-03T21:00")
    assert parts["validation"]["start"].startswith("2026-01-03T22:00") and parts["test"]["end"].startswith("2026-01-05T03:00")
    # Both series span the same hours: each has the overall boundaries, with half the rows.
    series = answer.json()["series"]
    assert list(series) == ["a", "b"] and answer.json()["series_truncated"] is False
    assert series["a"] == series["b"] == {name: {**part, "rows": part["rows"] // 2} for name, part in parts.items()}
    config = (await client.get(f"/api/v1/datasets/{dataset}", headers=account.headers)).json()["config"]
    assert config["split"]["train_size"] == 0.7


def two_stores_csv() -> bytes:
    """Store a: 10 days from 2026-01-01; store b: 20 days from 2026-01-06."""
    lines = ["date,store,sales"]
    lines += [f"2026-01-{1 + i:02},a,{i}" for i in range(10)]
    lines += [f"2026-01-{6 + i:02},b,{i}" for i in range(20)]
    return ("\n".join(lines) + "\n").encode()


async def split(client: httpx.AsyncClient, account: Account, dataset: str, body: dict) -> dict:
    answer = await client.post(f"/api/v1/datasets/{dataset}/split", headers=account.headers, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_time_series_split_answers_each_series_boundaries(client: httpx.AsyncClient, account: Account) -> None:
    dataset = (await upload(client, account, two_stores_csv())).json()["dataset_id"]
    config = {"date_column": "date", "target_column": "sales", "series_id_column": "store"}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    answer = await split(client, account, dataset, {"train_size": 0.6, "validation_size": 0.2, "test_size": 0.2})
    # Each store is cut at 60% and 80% of its own length, so their boundaries differ.
    days = {name: [(p["rows"], p["start"][:10], p["end"][:10]) for p in parts.values()] for name, parts in answer["series"].items()}
    assert days == {
        "a": [(6, "2026-01-01", "2026-01-06"), (2, "2026-01-07", "2026-01-08"), (2, "2026-01-09", "2026-01-10")],
        "b": [(12, "2026-01-06", "2026-01-17"), (4, "2026-01-18", "2026-01-21"), (4, "2026-01-22", "2026-01-25")],
    }
    assert list(answer["series"]["a"]) == ["train", "validation", "test"] and answer["series_truncated"] is False
    # Overall, the parts overlap in time: a's test days come before b's training ends.
    assert [(p["rows"], p["start"][:10], p["end"][:10]) for p in answer["parts"].values()] == [
        (18, "2026-01-01", "2026-01-17"),
        (6, "2026-01-07", "2026-01-21"),
        (6, "2026-01-09", "2026-01-25"),
    ]


async def test_per_series_boundaries_only_for_a_time_series_split_of_series(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    dataset = (await upload(client, account, two_stores_csv())).json()["dataset_id"]
    config = {"date_column": "date", "target_column": "sales", "series_id_column": "store"}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    shuffled = await split(client, account, dataset, {"train_size": 0.5, "test_size": 0.5, "method": "random", "shuffle": True})
    assert shuffled["series"] is None and shuffled["series_truncated"] is False
    single = (await upload(client, account, hourly_csv(tmp_path / "h.csv", hours=20).read_bytes())).json()["dataset_id"]
    alone = await split(client, account, single, {"train_size": 0.5, "test_size": 0.5})
    assert alone["series_count"] == 1 and alone["series"] is None and alone["parts"]["train"]["rows"] == 10


async def test_per_series_boundaries_stop_at_1000_series(client: httpx.AsyncClient, account: Account) -> None:
    lines = ["date,store,sales"] + [f"2026-01-0{day},s{i:04},{day}" for i in range(1001) for day in (1, 2)]
    dataset = (await upload(client, account, ("\n".join(lines) + "\n").encode())).json()["dataset_id"]
    config = {"date_column": "date", "target_column": "sales", "series_id_column": "store"}
    assert (await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json=config)).status_code == 200
    answer = await split(client, account, dataset, {"train_size": 0.5, "test_size": 0.5})
    assert answer["series_count"] == 1001 and answer["series_truncated"] is True
    assert list(answer["series"]) == [f"s{i:04}" for i in range(1000)]  # the first by id
    assert answer["series"]["s0999"]["test"]["start"].startswith("2026-01-02") and answer["series"]["s0999"]["validation"]["rows"] == 0


async def test_random_split_is_seeded(client: httpx.AsyncClient, account: Account, mixed: str) -> None:
    body = {"train_size": 0.5, "test_size": 0.5, "method": "random", "shuffle": True, "seed": 7}
    first = (await client.post(f"/api/v1/datasets/{mixed}/split", headers=account.headers, json=body)).json()
    again = (await client.post(f"/api/v1/datasets/{mixed}/split", headers=account.headers, json=body)).json()
    assert first["parts"] == again["parts"]
    assert first["parts"]["train"]["rows"] + first["parts"]["test"]["rows"] == 8 and first["parts"]["validation"]["rows"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"train_size": 0.7, "validation_size": 0.2, "test_size": 0.2},
        {"train_size": 0.7, "test_size": 0.3, "method": "time_series", "shuffle": True},
        {"train_size": 0, "test_size": 1},
        {"train_size": "0.7", "test_size": 0.3, "shuffle": "no"},
        {"train_size": "0.7", "test_size": 0.3},  # sizes are numbers, not text
        {"train_size": 0.7, "test_size": 0.3, "method": "kfold"},
    ],
)
async def test_split_refuses_parts_that_do_not_make_a_whole(client: httpx.AsyncClient, account: Account, mixed: str, body: dict) -> None:
    assert_envelope(await client.post(f"/api/v1/datasets/{mixed}/split", headers=account.headers, json=body), 422)
    config = (await client.get(f"/api/v1/datasets/{mixed}", headers=account.headers)).json()["config"]
    assert "split" not in config


@pytest.mark.parametrize("batch_rows", [200_000, 3], ids=["one-batch", "series-batches"])
async def test_time_series_statistics_do_not_depend_on_row_order(client: httpx.AsyncClient, account: Account, monkeypatch: pytest.MonkeyPatch, batch_rows: int) -> None:
    """Also when the steps between timestamps are counted a few series at a time."""
    monkeypatch.setattr(profile, "SERIES_BATCH_ROWS", batch_rows)
    lines = [f"2026-01-{day:02d},{store},{day}" for store in ("a", "b", "c", "d") for day in (1, 2, 3, 5, 6, 6, 7)]
    summaries = []
    for ordered in (lines, lines[::-1]):
        dataset = (await upload(client, account, ("date,store,sales\n" + "\n".join(ordered) + "\n").encode())).json()["dataset_id"]
        await client.put(f"/api/v1/datasets/{dataset}/config", headers=account.headers, json={"series_id_column": "store"})
        summaries.append((await client.get(f"/api/v1/datasets/{dataset}/statistics", headers=account.headers)).json()["time_series"])
    assert summaries[0] == summaries[1]
    assert (summaries[0]["duplicated_timestamps"], summaries[0]["gaps"], summaries[0]["series_lengths"]) == (4, 4, {"a": 7, "b": 7, "c": 7, "d": 7})


@pytest.mark.parametrize(("counts", "median"), [([1], 10), ([2, 1], 10), ([1, 1], 15), ([1, 2, 1], 20), ([3, 0, 1, 2], 20), ([1, 0, 0, 1], 25)])
def test_median_of_counted_values_is_the_median_of_the_values(counts: list[int], median: float) -> None:
    values = pl.Series([10, 20, 30, 40][: len(counts)])
    expected = pl.Series([v for v, c in zip(values, counts, strict=True) for _ in range(c)]).median()
    assert profile._median_of_counts(values, pl.Series(counts)) == expected == median
