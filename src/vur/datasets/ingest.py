"""Turning an uploaded file into a typed table: format sniffing, parsing (Polars), column
type detection and role suggestions. Plain functions: no database, no HTTP."""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from vur.datasets.exceptions import UnreadableFile
from vur.datasets.profile import series_batches

SAMPLE_BYTES = 64 * 1024
# Cells read as missing, as pandas reads them by default (spreadsheets and R write these);
# an empty cell always is.
MISSING_MARKERS = ["#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
CHUNK = 1 << 20
# Small row groups keep every later streaming read of the table (profile, statistics,
# preview pages) to a few MB at a time, whatever the size of the dataset.
ROW_GROUP_ROWS = 16_384
# Polars holds a few parts of a CSV at a time, and its buffers grow with their size.
CSV_PART = 512 * 1024
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
        elif not sample[: exc.start].isascii():
            # Valid UTF-8 accents before an invalid byte: two encodings in one file.
            line = sample[: exc.start].count(b"\n") + 1
            raise UnreadableFile(
                "The file mixes UTF-8 with another encoding",
                {"line": line, "byte_offset": exc.start, "problem": "bytes that are not valid UTF-8 (mixed encodings?)"},
            ) from exc
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


def read_header(path: Path, dialect: CsvDialect) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline(SAMPLE_BYTES * 4)
    if len(first) >= SAMPLE_BYTES * 4:
        raise UnreadableFile("The header line is too long to be a table header", {"line": 1, "bytes": len(first)})
    text = first.decode("latin-1" if dialect.encoding == "latin-1" else "utf-8", errors="replace")
    try:
        return next(csv.reader([text.rstrip("\r\n")], delimiter=dialect.delimiter), [])
    except csv.Error as exc:  # a lone carriage return inside a name, or a name past the csv module's field limit
        raise UnreadableFile("The header line cannot be read as CSV", {"line": 1, "problem": str(exc)}) from exc


def check_header(names: list[str]) -> None:
    blank = [i + 1 for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise UnreadableFile("Every column needs a name in the header", {"line": 1, "blank_columns": blank})
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise UnreadableFile("Column names must be unique", {"line": 1, "duplicated_columns": duplicated})
    if len(names) < 2:
        raise UnreadableFile(
            "Only one column was found; a dataset needs at least two (check that the delimiter is one of , ; tab |)",
            {"line": 1, "columns": names},
        )


# Polars' message for a value that does not fit the type inferred from the start of the file.
_UNPARSED_VALUE = re.compile(r"could not parse `(.*)` as dtype `([^`]+)` at column '(.*)' \(column number (\d+)\)")


def locate_csv_problem(path: Path, dialect: CsvDialect, expected_fields: int, message: str = "") -> dict[str, Any]:
    """Where a file that Polars refused first goes wrong: an undecodable byte, a row with
    more fields than the header, or the value of Polars' `message` that does not fit its
    column's type. Runs only after a failure, so it may be slow."""
    unparsed = _UNPARSED_VALUE.search(message)
    value = _unquoted(unparsed[1]) if unparsed else None
    decoder = codecs.getincrementaldecoder("utf-8" if dialect.encoding == "utf8" else "latin-1")()
    line, offset = 1, 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                before = chunk[: exc.start]
                return {"line": line + before.count(b"\n"), "byte_offset": offset + exc.start, "problem": "bytes that are not valid UTF-8 (mixed encodings?)"}
            line += chunk.count(b"\n")
            offset += len(chunk)
    with path.open(encoding="utf-8" if dialect.encoding == "utf8" else "latin-1", newline="") as text:
        reader = csv.reader(text, delimiter=dialect.delimiter)
        try:
            for row in reader:
                if len(row) > expected_fields:
                    return {"line": reader.line_num, "problem": f"{len(row)} fields where the header has {expected_fields}"}
                if unparsed and reader.line_num > 1 and len(row) >= int(unparsed[4]) and row[int(unparsed[4]) - 1] == value:
                    shown, kind = value[:100], _TYPE_NAMES.get(unparsed[2], unparsed[2])
                    return {"line": reader.line_num, "column": unparsed[3], "value": shown, "problem": f"'{shown}' is not a {kind}, as the column's earlier values are"}
        except csv.Error as exc:  # the problem as the csv module sees it (a field past its limit, say)
            return {"line": reader.line_num, "problem": str(exc)}
    return {}


_TYPE_NAMES = {"i64": "whole number", "f64": "number", "bool": "true/false value"}


def check_workbook(path: Path, max_uncompressed: int) -> None:
    """Refuse what is not a workbook, and zip bombs, before any parser expands them."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("The file looks like a zip archive but cannot be opened", {"file": str(exc)}) from exc
    if not any(e.filename == "xl/workbook.xml" for e in entries):
        raise UnreadableFile("The zip archive is not an Excel workbook (.xlsx)", {"file": "no xl/workbook.xml"})
    expanded = sum(e.file_size for e in entries)
    if expanded > max_uncompressed:
        raise UnreadableFile(
            f"The workbook would expand to {expanded:,} bytes, over the limit of {max_uncompressed:,}",
            {"file": "compressed content too large (zip bomb?)"},
        )


# Tried in order on a sample of each text column; day-first before month-first, as the
# users of these files write dates (01/02/2026 is the 1st of February).
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y%m%d",
)
SAMPLE_ROWS = 1000
# Unreadable cells listed per column (all are counted).
UNREAD_SHOWN = 20


def datetime_format(values: pl.Series) -> str | None:
    """The first format that reads (nearly) every value of a text sample, if any."""
    sample = values.drop_nulls().head(SAMPLE_ROWS)
    if sample.len() == 0 or values.dtype != pl.String:
        return None
    for fmt in DATETIME_FORMATS:
        parsed = sample.str.to_datetime(format=fmt, strict=False, exact=True)
        if parsed.null_count() <= 0.05 * sample.len():
            return fmt
    return None


def _sink_typed(source: pl.LazyFrame, sample: pl.DataFrame, out: Path, message: str) -> list[dict[str, Any]]:
    """Write `source` at `out` with its timestamps parsed, only in the columns that hold
    them, with the format `sample` shows (Polars' try_parse_dates tries every text column
    and costs more)."""
    formats = _formats(sample)
    sink_parquet(_typed(source, formats), out, message)
    return _unread_timestamps(source, formats, out)


def _unread_timestamps(source: pl.LazyFrame, formats: dict[str, str], out: Path) -> list[dict[str, Any]]:
    """Per timestamp column, the cells that held text but no timestamp in the column's
    format: stored as missing, so they are reported with their rows (1-based data rows)
    and values. The source is read again only for a column with missing timestamps."""
    if not formats:
        return []
    missing = pl.scan_parquet(out).select(pl.col(c).null_count() for c in formats).collect().row(0)
    warnings = []
    for (column, fmt), count in zip(formats.items(), missing, strict=True):
        if not count:
            continue
        unread = source.with_row_index("row", offset=1).filter(pl.col(column).is_not_null() & _parsed(column, fmt).is_null())
        shown = pl.col("row", column).head(UNREAD_SHOWN).implode()
        found = unread.select(pl.len().alias("count"), shown).collect().row(0, named=True)
        if found["count"]:
            warnings.append(
                {
                    "column": column,
                    "problem": f"{found['count']} values are not timestamps in the column's format {fmt}: they are stored as missing",
                    "count": found["count"],
                    "rows": found["row"],
                    "values": [value[:100] for value in found[column]],
                }
            )
    return warnings


def _parsed(column: str, fmt: str) -> pl.Expr:
    return pl.col(column).str.to_datetime(format=fmt, strict=False, exact=True)


def _typed(frame: pl.LazyFrame, formats: dict[str, str]) -> pl.LazyFrame:
    """Text columns that hold timestamps become timestamps (UTC when they carry a zone)."""
    casts = []
    for column, fmt in formats.items():
        parsed = _parsed(column, fmt)
        casts.append((parsed.dt.convert_time_zone("UTC") if "%z" in fmt else parsed).alias(column))
    return frame.with_columns(casts) if casts else frame


def write_typed_parquet(path: Path, file_format: str, out: Path, max_uncompressed: int) -> list[dict[str, Any]]:
    """Parse an upload once and write it as typed Parquet at `out`; the warnings about
    cells it could not read (see `_unread_timestamps`). CSVs stream through Polars
    without being held whole in memory."""
    if file_format == "parquet":
        try:
            source = pl.scan_parquet(path)
            sample = source.head(SAMPLE_ROWS).collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise UnreadableFile("Could not read the Parquet file", {"file": _first_line(exc)}) from exc
        check_header(sample.columns)
        return _sink_typed(source, sample, out, "Could not read the Parquet file")
    if file_format == "xlsx":
        check_workbook(path, max_uncompressed)
        try:
            frame = pl.read_excel(path, engine="calamine")
        except Exception as exc:  # calamine raises its own types for damaged workbooks
            raise UnreadableFile("Could not read the Excel workbook", {"file": _first_line(exc)}) from exc
        check_header(frame.columns)
        return _sink_typed(frame.lazy(), frame.head(SAMPLE_ROWS), out, "Could not read the Excel workbook")
    with path.open("rb") as handle:
        dialect = sniff_csv(handle.read(SAMPLE_BYTES))
    header = read_header(path, dialect)
    check_header(header)
    source_path = _utf8_copy(path, out) if dialect.encoding == "latin-1" else path
    parts = out.with_name(f".{out.name}.parts")
    options: dict[str, Any] = {"separator": dialect.delimiter, "decimal_comma": dialect.decimal_comma, "infer_schema_length": 10_000}
    try:
        options["null_values"] = _markers_at_start(source_path, dialect.delimiter, options["infer_schema_length"])
        # The types Polars infers from the start of the whole file, for every part.
        schema = pl.scan_csv(source_path, **options).collect_schema()
        files = _split_csv(source_path, parts)
        while True:
            table = pl.scan_csv(files, schema=schema, **options)
            sample = table.head(SAMPLE_ROWS).collect()
            try:
                return _sink_typed(table, sample, out, "Could not parse the file as CSV")
            except UnreadableFile as exc:
                message = exc.details.get("file", "")
                if (marker := _missing_marker(message)) and marker not in options["null_values"]:
                    options["null_values"] = [*options["null_values"], marker]
                elif (schema := _widened(schema, message)) is None:
                    raise
    except UnreadableFile as exc:
        exc.details.update(locate_csv_problem(path, dialect, len(header), exc.details.get("file", "")))
        raise
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise UnreadableFile("Could not parse the file as CSV", {"file": _first_line(exc), **locate_csv_problem(path, dialect, len(header), str(exc))}) from exc
    finally:
        shutil.rmtree(parts, ignore_errors=True)
        if source_path != path:
            source_path.unlink(missing_ok=True)


def _markers_at_start(path: Path, delimiter: str, rows: int) -> list[str]:
    """The missing-value markers among the first `rows` rows (within the first part):
    comparing every cell with all of them costs a third of the parse. One that first
    appears later stops the parse, and is then added (see `_missing_marker`)."""
    # From the first block only: Polars would load the whole file to read a few rows of it.
    first = next(_record_blocks(path), b"")
    start = pl.read_csv(io.BytesIO(first), n_rows=rows, infer_schema=False, separator=delimiter)
    return sorted({value for column in start.iter_columns() for value in column.filter(column.is_in(MISSING_MARKERS)).unique()})


def _missing_marker(message: str) -> str | None:
    """The missing-value marker that Polars' `message` says fits no type, if it is one."""
    unparsed = _UNPARSED_VALUE.search(message)
    value = _unquoted(unparsed[1]) if unparsed else None
    return value if value in MISSING_MARKERS else None


def _widened(schema: pl.Schema, message: str) -> pl.Schema | None:
    """The schema with the column of Polars' `message` read as decimals, when that column
    was inferred whole from the start of the file and a later value has decimals; None
    when the failure is something else."""
    unparsed = _UNPARSED_VALUE.search(message)
    if not unparsed or unparsed[2] != "i64" or schema.get(unparsed[3]) != pl.Int64:
        return None
    try:
        float(_unquoted(unparsed[1]).replace(",", "."))
    except ValueError:
        return None
    return pl.Schema({name: pl.Float64 if name == unparsed[3] else dtype for name, dtype in schema.items()})


def _unquoted(field: str) -> str:
    """A CSV field as Polars quotes it in its messages, without the quotes."""
    return field[1:-1].replace('""', '"') if len(field) >= 2 and field[0] == field[-1] == '"' else field


def _formats(sample: pl.DataFrame) -> dict[str, str]:
    return {column: fmt for column in sample.columns if (fmt := datetime_format(sample[column]))}


def sink_parquet(frame: pl.LazyFrame, out: Path, message: str) -> None:
    """Write `frame` as Parquet at `out`, streaming where Polars can. A failure leaves
    no file and is an UnreadableFile carrying `message`."""
    try:
        frame.sink_parquet(out, compression="lz4", row_group_size=ROW_GROUP_ROWS)
    except (pl.exceptions.PolarsError, OSError) as exc:
        out.unlink(missing_ok=True)
        raise UnreadableFile(message, {"file": _first_line(exc)}) from exc


def _split_csv(path: Path, folder: Path) -> list[Path]:
    """`path` cut at record boundaries into files of about CSV_PART bytes, each behind
    the header line. Polars reads a CSV file whole into memory before parsing it: a
    list of parts it reads one (and a few ahead) at a time."""
    folder.mkdir()
    parts, header = [], b""
    for block in _record_blocks(path):
        part = folder / f"{len(parts):06d}.csv"
        with part.open("wb") as out:
            out.write(header)
            out.write(block)
        parts.append(part)
        if not header:
            header = block[: _first_record_end(block)]
    return parts


def _record_blocks(path: Path) -> Iterator[bytes]:
    """The file in blocks of about CSV_PART bytes, each ending with a whole record. Each
    byte is scanned once, so a record longer than a block (a 50 MB line) costs no rescans."""
    pending, odd = bytearray(), False  # what is not yet yielded; whether it holds an odd number of quotes
    with path.open("rb") as handle:
        while chunk := handle.read(CSV_PART):
            end = _last_record_end(chunk, odd)
            if end:
                pending += chunk[:end]
                yield bytes(pending)
                pending, odd = bytearray(chunk[end:]), chunk.count(b'"', end) % 2 == 1
            else:
                pending += chunk
                odd ^= chunk.count(b'"') % 2 == 1
    if pending:
        yield bytes(pending)


# A newline ends a record when an even number of quotes comes before it (Polars splits
# its own chunks the same way).
def _first_record_end(data: bytes) -> int:
    start, quotes = 0, 0
    while (end := data.find(b"\n", start)) >= 0:
        quotes += data.count(b'"', start, end)
        if quotes % 2 == 0:
            return end + 1
        start = end + 1
    return len(data)


def _last_record_end(chunk: bytes, odd: bool) -> int:
    """Just after the last newline of `chunk` that ends a record, `odd` saying whether an
    odd number of quotes came before the chunk; 0 when none does."""
    if not odd and b'"' not in chunk:
        return chunk.rfind(b"\n") + 1
    import numpy as np  # vectorised: a quoted field may hold millions of newlines

    data = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    quotes_before = np.cumsum(data == ord('"'), dtype=np.int64)[newlines] + odd
    ends = newlines[quotes_before % 2 == 0]
    return int(ends[-1]) + 1 if ends.size else 0


def _utf8_copy(path: Path, beside: Path) -> Path:
    """A UTF-8 copy of a Latin-1 file, transcoded in chunks (Polars reads only UTF-8)."""
    target = beside.with_name(f".{beside.name}.utf8.csv")
    with path.open("r", encoding="latin-1", newline="") as source, target.open("w", encoding="utf-8", newline="") as copy:
        while chunk := source.read(CHUNK):
            copy.write(chunk)
    return target


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:500]


def detect_column_type(name: str, series: pl.Series, rows: int, non_null: int, unique: int | None) -> str:
    """`series` may be a sample; the counts are over the whole column. `unique` is None
    where the type does not depend on it (see `_needs_unique`)."""
    dtype = series.dtype
    if dtype.is_temporal():
        return "datetime"
    if dtype == pl.Boolean:
        return "boolean"
    # Whole numbers named like an id are ids: a row's own (all distinct) or a series' in a
    # long-format file (repeated), never a measure.
    if dtype.is_integer() and _ID_NAME.search(name):
        return "identifier"
    if dtype.is_numeric():
        return "numeric"
    if dtype == pl.String:
        assert unique is not None, "text columns are always counted"
        lowered = set(series.drop_nulls().str.to_lowercase().unique().to_list()[:3])
        if lowered and lowered <= {"true", "false"}:
            return "boolean"
        if unique <= max(50, 0.5 * non_null) or _ID_NAME.search(name) and unique < non_null:
            return "identifier" if _ID_NAME.search(name) else "categorical"
        avg_len = series.drop_nulls().str.len_chars().mean() or 0
        return "text" if avg_len > 30 else "identifier"
    return "text"


def _needs_unique(name: str, dtype: pl.DataType) -> bool:
    """Whether the type or role of a column depends on its count of distinct values:
    counting costs a hash set as large as the column, so measures, whose type never
    depends on it, are not counted."""
    return dtype.is_temporal() or dtype == pl.String or dtype.is_integer() and bool(_ID_NAME.search(name))


@dataclass(frozen=True)
class TableProfile:
    columns: list[str]
    rows: int
    types: dict[str, str]
    suggestions: dict[str, Any]
    frequency: str | None


def profile_table(table: pl.LazyFrame) -> TableProfile:
    """Types, role suggestions and frequency of a stored table, read lazily and one
    column at a time: its missing values, and its distinct values (a hash set) where
    they matter; text patterns from a sample."""
    schema = table.collect_schema()
    columns = schema.names()
    rows = table.select(pl.len()).collect().item()
    missing, unique = {}, {}
    for column, dtype in schema.items():
        counts = [pl.col(column).null_count().alias("missing")] + ([pl.col(column).n_unique().alias("unique")] if _needs_unique(column, dtype) else [])
        missing[column], *distinct = table.select(counts).collect().row(0)
        if distinct:
            unique[column] = distinct[0]
    sample = table.head(SAMPLE_ROWS).collect()
    types = {c: detect_column_type(c, sample[c], rows, rows - missing[c], unique.get(c)) for c in columns}
    suggestions = suggest_roles(table, types, rows, unique)
    date_column = suggestions["date_column"]
    frequency = infer_frequency(table.select(pl.col(date_column).unique()).collect()[date_column]) if date_column else None
    return TableProfile(columns, rows, types, suggestions, frequency)


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


def suggest_roles(table: pl.LazyFrame, types: dict[str, str], rows: int, unique: dict[str, int]) -> dict[str, Any]:
    date_column = next((c for c, t in types.items() if t == "datetime"), None)
    numeric = [c for c, t in types.items() if t == "numeric"]
    target = next((c for c in numeric if _TARGET_NAME.search(c)), numeric[-1] if numeric else None)
    series_id = None
    timestamps = unique[date_column] if date_column is not None else rows
    if timestamps < rows:
        # Long format: some id column makes (id, timestamp) unique. It needs at least
        # rows / timestamps distinct values; the fewest that pass the check wins.
        candidates = [c for c, kind in types.items() if kind in ("categorical", "identifier") and c != date_column]
        for column in sorted(candidates, key=lambda c: unique[c]):
            if unique[column] * timestamps < rows or unique[column] >= rows:
                continue
            if not _repeats_a_timestamp(table, column, date_column, rows):
                series_id = column
                break
    return {"date_column": date_column, "target_column": target, "numeric_columns": numeric, "series_id_column": series_id}


def _repeats_a_timestamp(table: pl.LazyFrame, series: str, date_column: str, rows: int) -> bool:
    """Whether some series has a timestamp twice (two missing ones count), counted a
    batch of series at a time."""
    for batch in series_batches(table, series, rows):
        repeats = batch.group_by(series).agg((pl.len() - pl.col(date_column).n_unique()).alias("repeats"))
        if repeats.select(pl.col("repeats").max() > 0).collect().item():
            return True
    return False
