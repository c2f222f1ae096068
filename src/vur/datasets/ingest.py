"""Turning an uploaded file into a typed table: format sniffing, parsing (Polars), column
type detection and role suggestions. Plain functions: no database, no HTTP."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from vur.datasets.exceptions import UnreadableFile

SAMPLE_BYTES = 64 * 1024
_ID_NAME = re.compile(r"(^|_)(id|uuid|key|code|series|item|sku|store)($|_)", re.IGNORECASE)
_TARGET_NAME = re.compile(r"(^|_)(y|target|value|sales|demand|amount|qty|quantity|count|load|price)($|_)", re.IGNORECASE)


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    encoding: str
    decimal_comma: bool


def sniff_format(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if b"\x00" in head[:4096]:
        raise UnreadableFile("The file is neither CSV/TSV text nor Parquet", {"file": "binary content not recognised"})
    return "csv"


def sniff_csv(sample: bytes) -> CsvDialect:
    try:
        text = sample.decode("utf-8")
        encoding = "utf8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still UTF-8.
        if exc.start >= len(sample) - 3:
            text, encoding = sample[: exc.start].decode("utf-8"), "utf8"
        else:
            text, encoding = sample.decode("latin-1"), "latin-1"
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        raise UnreadableFile("The file is empty", {"file": "no rows"})
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    # "1,5" style numbers only make sense with another delimiter.
    decimal_comma = delimiter != "," and bool(re.search(r"(^|[;\t|])-?\d+,\d+($|[;\t|])", "\n".join(lines[1:])))
    return CsvDialect(delimiter, encoding, decimal_comma)


def read_table(path: Path, file_format: str) -> pl.DataFrame:
    try:
        if file_format == "parquet":
            return pl.read_parquet(path)
        if file_format == "csv":
            with path.open("rb") as handle:
                dialect = sniff_csv(handle.read(SAMPLE_BYTES))
            source: Any = path
            if dialect.encoding == "latin-1":
                source = io.BytesIO(path.read_bytes().decode("latin-1").encode("utf-8"))
            return pl.read_csv(
                source,
                separator=dialect.delimiter,
                decimal_comma=dialect.decimal_comma,
                try_parse_dates=True,
                infer_schema_length=10_000,
            )
    except UnreadableFile:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise UnreadableFile(f"Could not parse the file as {file_format.upper()}", {"file": str(exc).splitlines()[0][:500]}) from exc
    raise UnreadableFile(f"{file_format.upper()} files are not supported yet", {"file": file_format})


def _parses_as_datetime(series: pl.Series) -> bool:
    sample = series.drop_nulls().head(500)
    if sample.len() == 0:
        return False
    try:
        parsed = sample.str.to_datetime(strict=False)
    except pl.exceptions.PolarsError:  # no format fits the sample
        return False
    return parsed.null_count() <= 0.05 * sample.len()


def detect_column_type(name: str, series: pl.Series) -> str:
    dtype = series.dtype
    non_null = series.len() - series.null_count()
    unique = series.n_unique()
    if dtype.is_temporal():
        return "datetime"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer() and non_null > 0 and unique == series.len() and _ID_NAME.search(name):
        return "identifier"
    if dtype.is_numeric():
        return "numeric"
    if dtype == pl.String:
        if _parses_as_datetime(series):
            return "datetime"
        lowered = set(series.drop_nulls().str.to_lowercase().unique().to_list()[:3])
        if lowered and lowered <= {"true", "false"}:
            return "boolean"
        if unique <= max(50, 0.5 * non_null) or _ID_NAME.search(name) and unique < non_null:
            return "identifier" if _ID_NAME.search(name) else "categorical"
        avg_len = series.drop_nulls().str.len_chars().mean() or 0
        return "text" if avg_len > 30 else "identifier"
    return "text"


def detect_types(frame: pl.DataFrame) -> dict[str, str]:
    return {name: detect_column_type(name, frame[name]) for name in frame.columns}


def infer_frequency(timestamps: pl.Series) -> str | None:
    """A pandas-style frequency alias from the typical step between timestamps."""
    values = timestamps.drop_nulls().unique().sort()
    if values.len() < 3:
        return None
    if values.dtype == pl.Date:
        values = values.cast(pl.Datetime("us"))
    step = values.diff().drop_nulls().median()
    if step is None:
        return None
    seconds = step.total_seconds() if hasattr(step, "total_seconds") else float(step) / 1e6
    for alias, size in (("s", 1), ("min", 60), ("h", 3600), ("D", 86400), ("W", 7 * 86400)):
        if seconds == size:
            return alias
    days = seconds / 86400
    if 28 <= days <= 31:
        return "MS" if bool((values.dt.day() == 1).all()) else "ME"
    if 89 <= days <= 92:
        return "QS" if bool((values.dt.day() == 1).all()) else "QE"
    if 365 <= days <= 366:
        return "YS" if bool((values.dt.day() == 1).all()) else "YE"
    for alias, size in (("min", 60), ("h", 3600), ("D", 86400)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{alias}"
    return None


def suggest_roles(frame: pl.DataFrame, types: dict[str, str]) -> dict[str, Any]:
    date_column = next((c for c, t in types.items() if t == "datetime"), None)
    numeric = [c for c, t in types.items() if t == "numeric"]
    target = next((c for c in numeric if _TARGET_NAME.search(c)), numeric[-1] if numeric else None)
    series_id = None
    if date_column is not None and frame[date_column].n_unique() < frame.height:
        for column, kind in types.items():
            if kind in ("categorical", "identifier") and column != date_column:
                if frame.select(pl.struct(column, date_column).n_unique()).item() == frame.height:
                    series_id = column
                    break
    return {"date_column": date_column, "target_column": target, "numeric_columns": numeric, "series_id_column": series_id}


def to_storage_types(frame: pl.DataFrame, types: dict[str, str]) -> pl.DataFrame:
    """Cast text columns detected as datetimes so that the stored Parquet is typed."""
    casts = [
        pl.col(c).str.to_datetime(strict=False).alias(c)
        for c, t in types.items()
        if t == "datetime" and frame[c].dtype == pl.String
    ]
    return frame.with_columns(casts) if casts else frame
