"""Uploading tabular files: what is accepted, what is refused, and that a refusal
leaves nothing behind (no stored file, no dataset row)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.conftest import Account, add_member, assert_envelope, hourly_csv
from vur.settings import Settings

pytestmark = pytest.mark.anyio


def workspace_files(settings: Settings, account: Account) -> list[Path]:
    folder = settings.artifacts_dir / "datasets" / account.workspace_id.replace("-", "")
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def upload(client: httpx.AsyncClient, account: Account, content: bytes, filename: str = "data.csv", **form: str) -> httpx.Response:
    return await client.post(
        "/api/v1/datasets/upload", headers=account.headers, files={"file": (filename, io.BytesIO(content), "text/csv")}, data=form
    )


async def dataset_count(client: httpx.AsyncClient, account: Account) -> int:
    response = await client.get("/api/v1/datasets", headers=account.headers)
    return int(response.headers["X-Total-Count"])


async def test_csv_upload_answers_the_seed_shape(client: httpx.AsyncClient, account: Account, tmp_path: Path, settings: Settings) -> None:
    response = await upload(client, account, hourly_csv(tmp_path / "h.csv", series=["north", "south"]).read_bytes(), "sales.csv", name="Sales")
    body = response.json()
    assert response.status_code == 201, body
    assert set(body) >= {"dataset_id", "filename", "size", "columns", "rows_count", "detected_types", "suggestions"}
    assert body["columns"] == ["date", "series", "value"]
    assert body["rows_count"] == 2 * 24 * 21
    # A low-cardinality column named like an id is the series identifier of a long-format file.
    assert body["detected_types"] == {"date": "datetime", "series": "identifier", "value": "numeric"}
    assert body["suggestions"] == {"date_column": "date", "target_column": "value", "numeric_columns": ["value"], "series_id_column": "series"}
    assert body["frequency"] == "h"
    detail = (await client.get(f"/api/v1/datasets/{body['dataset_id']}", headers=account.headers)).json()
    assert detail["name"] == "Sales" and detail["kind"] == "tabular" and detail["file_format"] == "csv"
    # The original and its typed Parquet copy, nothing else.
    assert sorted(p.suffix for p in workspace_files(settings, account)) == [".csv", ".parquet"]


async def test_whole_number_ids_are_identifiers_and_name_the_series(client: httpx.AsyncClient, account: Account) -> None:
    """An integer column named like an id is never a measure: here it repeats (two stores
    in long format), so it is the series id and not a target candidate."""
    rows = "".join(f"2026-01-{day:02d},{store},{store * day}\n" for store in (1, 2) for day in range(1, 29))
    body = (await upload(client, account, ("date,store_id,sales\n" + rows).encode())).json()
    assert body["detected_types"] == {"date": "datetime", "store_id": "identifier", "sales": "numeric"}
    assert body["suggestions"] == {"date_column": "date", "target_column": "sales", "numeric_columns": ["sales"], "series_id_column": "store_id"}


async def test_semicolon_decimal_comma_latin1(client: httpx.AsyncClient, account: Account) -> None:
    content = "data;região;valor\n01/02/2026;São Paulo;1,5\n02/02/2026;Jundiaí;2,25\n03/02/2026;São Paulo;3,0\n".encode("latin-1")
    response = await upload(client, account, content)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["columns"] == ["data", "região", "valor"]
    assert body["detected_types"] == {"data": "datetime", "região": "categorical", "valor": "numeric"}
    assert body["frequency"] == "D"
    rows = (await client.get(f"/api/v1/datasets/{body['dataset_id']}/preview", headers=account.headers)).json()["rows"]
    # Day first: 01/02/2026 is the 1st of February.
    assert [r["data"][:10] for r in rows] == ["2026-02-01", "2026-02-02", "2026-02-03"]
    assert [r["valor"] for r in rows] == [1.5, 2.25, 3.0]
    assert rows[1]["região"] == "Jundiaí"


async def test_timestamps_with_offsets_are_stored_in_utc(client: httpx.AsyncClient, account: Account) -> None:
    content = b"ts,y\n2026-03-01T00:00:00-03:00,1\n2026-03-01T01:00:00-03:00,2\n2026-03-01T02:00:00-03:00,3\n"
    body = (await upload(client, account, content)).json()
    assert body["detected_types"]["ts"] == "datetime" and body["frequency"] == "h"
    rows = (await client.get(f"/api/v1/datasets/{body['dataset_id']}/preview", headers=account.headers)).json()["rows"]
    assert rows[0]["ts"].startswith("2026-03-01T03:00:00")


async def test_parquet_is_recognised_by_its_bytes(client: httpx.AsyncClient, account: Account) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"ts": pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 10), "1d", eager=True), "y": list(range(10))}).write_parquet(buffer)
    response = await upload(client, account, buffer.getvalue(), "misleading-name.csv")
    assert response.status_code == 201, response.text
    assert response.json()["detected_types"] == {"ts": "datetime", "y": "numeric"}
    assert response.json()["frequency"] == "D"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"date,value\n", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
        (b"a,b\n1,2\n3,4,5,6\n", "ragged"),
    ],
)
async def test_unreadable_files_are_422_and_leave_nothing(
    client: httpx.AsyncClient, account: Account, settings: Settings, content: bytes, reason: str
) -> None:
    body = assert_envelope(await upload(client, account, content), 422)
    assert body["details"], reason
    assert workspace_files(settings, account) == []
    assert await dataset_count(client, account) == 0


async def test_oversized_upload_is_413_and_leaves_nothing(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    line = b"2026-01-01T00:00:00,1.0\n"
    content = b"date,value\n" + line * (settings.max_upload_bytes // len(line) + 10)
    body = assert_envelope(await upload(client, account, content), 413)
    assert body["error"]
    assert workspace_files(settings, account) == []
    assert await dataset_count(client, account) == 0


async def test_form_errors_name_the_field(client: httpx.AsyncClient, account: Account) -> None:
    missing = await client.post("/api/v1/datasets/upload", headers=account.headers, data={"name": "x"})
    assert "file" in assert_envelope(missing, 422)["details"]
    too_long = await upload(client, account, b"a,b\n1,2\n", name="n" * 201)
    assert "name" in assert_envelope(too_long, 422)["details"]
    not_multipart = await client.post("/api/v1/datasets/upload", headers=account.headers, json={"file": "a,b\n1,2"})
    assert "file" in assert_envelope(not_multipart, 422)["details"]


async def test_viewers_cannot_upload(client: httpx.AsyncClient, account: Account) -> None:
    viewer = await add_member(client, account, "viewer")
    assert_envelope(await upload(client, viewer, b"a,b\n1,2\n"), 403)
    assert await dataset_count(client, account) == 0


async def test_unauthenticated_upload_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/datasets/upload", files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")})
    assert_envelope(response, 401)


def workbook(rows: list[list]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def test_excel_workbook_with_formula_cells(client: httpx.AsyncClient, account: Account) -> None:
    from datetime import datetime

    content = workbook([["date", "value", "note"], *[[datetime(2026, 1, d), d * 1.5, "=cmd|' /C calc'!A0"] for d in range(1, 8)]])
    response = await upload(client, account, content, "book.csv")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["detected_types"]["date"] == "datetime" and body["detected_types"]["value"] == "numeric"
    assert body["frequency"] == "D"


async def test_zip_bomb_named_xlsx_is_refused_before_expansion(client: httpx.AsyncClient, account: Account, settings: Settings) -> None:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (5 * settings.max_upload_bytes))
    assert len(buffer.getvalue()) < settings.max_upload_bytes
    body = assert_envelope(await upload(client, account, buffer.getvalue(), "bomb.xlsx"), 422)
    assert "expand" in body["error"]
    assert workspace_files(settings, account) == []


async def test_zip_that_is_not_a_workbook(client: httpx.AsyncClient, account: Account) -> None:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "not an Excel workbook" in assert_envelope(await upload(client, account, buffer.getvalue(), "x.xlsx"), 422)["error"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a,b\n1,2\n3,4,5,6\n7,8\n", {"line": 3}),
        ("a,b\n1,café\n2,ok\n".encode() + "3,caf\xe9\n".encode("latin-1") * 40000, {"line": 4}),
        (b"a,b\n" + b"1,plain\n" * 20000 + "2,caf\xe9\n".encode("latin-1"), {"line": 20002}),
        (b"a,a,b\n1,2,3\n", {"duplicated_columns": ["a"]}),
        (b"a,,b\n1,2,3\n", {"blank_columns": [2]}),
        (b"value\n1\n2\n", {"columns": ["value"]}),
        (b"a," + b"x" * (1024 * 1024) + b"\n1,2\n", {"line": 1}),
        (b"a,b\n" + b"x,1\n" * 20000 + b'y,"twelve"\n', {"line": 20002, "column": "b", "value": "twelve"}),
        (b"da\rte,value\n2026-01-01T00:00:00,1\n2026-01-01T01:00:00,2\n", {"line": 1}),  # found by fuzzing: was a 500
    ],
    ids=["ragged", "mixed-encoding", "mixed-encoding-late", "duplicate-header", "blank-header", "single-column", "huge-header", "text-late-in-numbers", "carriage-return-in-header"],
)
async def test_malformed_csv_says_where(client: httpx.AsyncClient, account: Account, settings: Settings, content: bytes, expected: dict) -> None:
    details = assert_envelope(await upload(client, account, content), 422)["details"]
    assert expected.items() <= details.items(), details
    assert workspace_files(settings, account) == []


async def test_decimals_after_whole_numbers_and_missing_markers_keep_a_column_numeric(client: httpx.AsyncClient, account: Account) -> None:
    """Types are inferred from the start of the file; a decimal far below widens the column
    instead of failing, and "NA", "null", "#N/A"... are missing values, not text."""
    content = b"date,units,price\n" + b"".join(b"2026-01-01,%d,%s\n" % (i, b"NA" if i % 2 else b"1.5") for i in range(20000)) + b"2026-01-02,2.5,#N/A\n2026-01-03,null,1.25\n"
    response = await upload(client, account, content)
    assert response.status_code == 201, response.text
    assert response.json()["detected_types"] == {"date": "datetime", "units": "numeric", "price": "numeric"}
    statistics = (await client.get(f"/api/v1/datasets/{response.json()['dataset_id']}/statistics", headers=account.headers)).json()["columns"]
    assert (statistics["units"]["max"], statistics["units"]["missing"]) == (19999, 1)
    assert (statistics["price"]["missing"], statistics["price"]["min"], statistics["price"]["max"]) == (10001, 1.25, 1.5)


async def test_unreadable_timestamps_are_missing_and_reported_with_their_rows(client: httpx.AsyncClient, account: Account) -> None:
    """The format comes from a sample; later cells in no such format are stored as missing,
    and the upload says which rows held what, as does the dataset afterwards."""
    days = [f"{day:02d}/01/2026" for day in range(1, 32)] * 40
    days[1100], days[1150], days[1200] = "31/02/2026", "soon", ""
    response = await upload(client, account, ("date,value\n" + "".join(f"{day},{i}\n" for i, day in enumerate(days))).encode())
    assert response.status_code == 201, response.text
    assert response.json()["detected_types"]["date"] == "datetime"
    warning = {"column": "date", "count": 2, "rows": [1101, 1151], "values": ["31/02/2026", "soon"]}
    assert [{k: w[k] for k in warning} for w in response.json()["warnings"]] == [warning]
    assert "%d/%m/%Y" in response.json()["warnings"][0]["problem"]
    detail = (await client.get(f"/api/v1/datasets/{response.json()['dataset_id']}", headers=account.headers)).json()
    assert detail["warnings"] == response.json()["warnings"]
    statistics = (await client.get(f"/api/v1/datasets/{response.json()['dataset_id']}/statistics", headers=account.headers)).json()
    assert statistics["columns"]["date"]["missing"] == 3
    clean = (await upload(client, account, b"date,value\n2026-01-01,1\n2026-01-02,2\n")).json()
    assert clean["warnings"] == []


async def test_formula_cells_are_stored_as_text(client: httpx.AsyncClient, account: Account) -> None:
    content = b"date,value,cmd\n2026-01-01,1,=cmd|' /C calc'!A0\n2026-01-02,2,@SUM(1+1)\n2026-01-03,3,+1\n"
    dataset = (await upload(client, account, content)).json()["dataset_id"]
    rows = (await client.get(f"/api/v1/datasets/{dataset}/preview", headers=account.headers)).json()["rows"]
    assert [r["cmd"] for r in rows] == ["=cmd|' /C calc'!A0", "@SUM(1+1)", "+1"]


async def test_upload_cut_off_mid_stream_leaves_nothing(live_server: str, account: Account, settings: Settings, client: httpx.AsyncClient) -> None:
    """The client promises 1 MB and hangs up after a few KB."""
    import asyncio
    from urllib.parse import urlparse

    target = urlparse(live_server)
    boundary = "cutcutcut"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    body_start = head + b"date,value\n" + b"2026-01-01T00:00:00,1\n" * 200
    request = (
        f"POST /api/v1/datasets/upload HTTP/1.1\r\nHost: {target.hostname}\r\nAuthorization: Bearer {account.access_token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(target.hostname, target.port)
    writer.write(request + body_start)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(1)
    assert workspace_files(settings, account) == []
    assert await dataset_count(client, account) == 0


async def test_truncated_multipart_body_is_a_4xx(client: httpx.AsyncClient, account: Account) -> None:
    boundary = "abc"
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\n\r\na,b\n1,2\n".encode()
    response = await client.post(
        "/api/v1/datasets/upload", headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}, content=body
    )
    assert 400 <= response.status_code < 500
    assert_envelope(response, response.status_code)
