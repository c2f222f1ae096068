"""A CSV is read in parts (Polars reads a file whole into memory): the typed table is
the one Polars reads from the whole file, whatever falls on a part boundary."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from vur.datasets import ingest


def quoted_rows(count: int) -> bytes:
    """Quoted fields with newlines, delimiters and escaped quotes, CRLF ends, a blank
    line and a short row, and no newline at the very end."""
    rows = [b'%d,"line %d\nnext, ""quoted"" part",%d.5\r\n' % (i, i, i) for i in range(count)]
    rows[count // 3] = b"\r\n"
    rows[count // 2] = b"%d\r\n" % count
    return b"id,text,value\r\n" + b"".join(rows).rstrip(b"\r\n")


@pytest.mark.parametrize("part_bytes", [16, 100, 4096, 1 << 20])
def test_parts_read_like_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part_bytes: int) -> None:
    monkeypatch.setattr(ingest, "CSV_PART", part_bytes)
    source, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    source.write_bytes(quoted_rows(300))
    ingest.write_typed_parquet(source, "csv", out, max_uncompressed=1 << 30)
    assert_frame_equal(pl.read_parquet(out), pl.read_csv(source, infer_schema_length=10_000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]


def test_types_are_inferred_from_the_start_of_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A float in the 50th row makes the column Float64 even though the first part holds only integers."""
    monkeypatch.setattr(ingest, "CSV_PART", 64)
    source, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    source.write_bytes(b"a,b\n" + b"1,x\n" * 49 + b"1.5,y\n" + b"2,z\n" * 10)
    ingest.write_typed_parquet(source, "csv", out, max_uncompressed=1 << 30)
    assert pl.read_parquet(out).schema == pl.Schema({"a": pl.Float64, "b": pl.String})


def test_a_field_past_the_csv_modules_limit_is_where_the_problem_is(tmp_path: Path) -> None:
    """Said as the problem, not raised: the csv module refuses a field over 128 KiB."""
    path = tmp_path / "wide.csv"
    path.write_bytes(b"a,b\n1,2\n3," + b"x" * 200_000 + b"\n")
    assert ingest.locate_csv_problem(path, ingest.CsvDialect(",", "utf8", False), 2) == {"line": 3, "problem": "field larger than field limit (131072)"}
