"""Profiling and forecasting checks over a dataset's typed Parquet. Plain functions on
Polars frames: no database, no HTTP."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import polars as pl

HISTOGRAM_BINS = 20
# Rows of whole series held in memory together by per-series work (see series_batches).
SERIES_BATCH_ROWS = 200_000
TOP_VALUES = 10


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _finite(value)


def _known(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column with NaN counted as missing, like null."""
    return pl.col(name).fill_nan(None) if dtype.is_float() else pl.col(name)


# Per column: the moments of numeric columns, the counts of all (and the range of
# temporal ones). `e` is the column with NaN as missing.
_FIGURES: dict[str, Any] = {
    "missing": lambda c, e: e.null_count(),
    "unique": lambda c, e: pl.col(c).n_unique(),
    "mean": lambda c, e: e.mean(),
    "std": lambda c, e: e.std(),
    "min": lambda c, e: e.min(),
    "q25": lambda c, e: e.quantile(0.25, "linear"),
    "median": lambda c, e: e.quantile(0.5, "linear"),
    "q75": lambda c, e: e.quantile(0.75, "linear"),
    "max": lambda c, e: e.max(),
}


def columns_statistics(table: pl.LazyFrame, types: dict[str, str], rows: int) -> dict[str, dict[str, Any]]:
    """Per-column figures, one column at a time: a column's values, sort and hash set
    are in memory at once, never the whole table's."""
    return {name: _column_statistics(table, name, dtype, types.get(name, "text"), rows) for name, dtype in table.collect_schema().items()}


def _column_statistics(table: pl.LazyFrame, name: str, dtype: pl.DataType, kind: str, rows: int) -> dict[str, Any]:
    """Counts and moments, then the histogram (which needs the range) of a numeric
    column or the top values of another."""
    wanted = list(_FIGURES) if dtype.is_numeric() else ["missing", "unique", *(["min", "max"] if dtype.is_temporal() else [])]
    known = _known(name, dtype)
    figures = table.select(_FIGURES[figure](name, known).alias(figure) for figure in wanted).collect().row(0, named=True)
    stats: dict[str, Any] = {"type": kind, **{figure: _json_value(value) for figure, value in figures.items()}}
    stats["count"] = rows - stats["missing"]
    if dtype.is_numeric():
        low, high = stats["min"], stats["max"]
        if low is not None and low != high:
            stats["histogram"] = _histogram(table, name, low, high, dtype)
        elif stats["count"]:
            stats["histogram"] = {"edges": [low, high], "counts": [stats["count"]]}
    elif (top := _top_values_query(table, name).collect()).height:
        stats["top_values"] = [{"value": value, "count": count} for value, count in top.iter_rows()]
    return stats


def _histogram(table: pl.LazyFrame, name: str, low: float, high: float, dtype: pl.DataType) -> dict[str, list[Any]]:
    width = (high - low) / HISTOGRAM_BINS
    position = ((_known(name, dtype).cast(pl.Float64) - low) / width).floor().clip(0, HISTOGRAM_BINS - 1).cast(pl.Int64)
    per_bin = [0] * HISTOGRAM_BINS
    for bin_, count in table.select(position.alias("bin")).drop_nulls().group_by("bin").len().collect().iter_rows():
        per_bin[bin_] = count
    return {"edges": [low + i * width for i in range(HISTOGRAM_BINS + 1)], "counts": per_bin}


def _top_values_query(table: pl.LazyFrame, name: str) -> pl.LazyFrame:
    values = pl.col(name).cast(pl.String)
    return (
        table.select(values.alias("value"))
        .drop_nulls()
        .group_by("value")
        .len("count")
        .sort(["count", "value"], descending=[True, False])
        .head(TOP_VALUES)
    )


def correlations(table: pl.LazyFrame, numeric: list[str]) -> dict[str, dict[str, float | None]]:
    """Pearson correlation of every pair of numeric columns, over the rows where all of
    them are known. Polars streams the sums it needs."""
    if len(numeric) < 2:
        return {}
    matrix = table.select(numeric).cast(pl.Float64).fill_nan(None).drop_nulls()
    pairs = [(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1 :]]
    known, *values = matrix.select(pl.len(), *[pl.corr(a, b).alias(f"c{k}") for k, (a, b) in enumerate(pairs)]).collect().row(0)
    if known < 2:
        return {}
    result: dict[str, dict[str, float | None]] = {a: {a: 1.0} for a in numeric}
    for (a, b), value in zip(pairs, values, strict=True):
        result[a][b] = result[b][a] = _finite(value)
    return result


def series_batches(frame: pl.LazyFrame, series: str | None, rows: int) -> list[pl.LazyFrame]:
    """`frame` cut into subsets of whole series of about SERIES_BATCH_ROWS rows together.
    Work that needs a series' rows at once (sorting its timestamps, counting repeats)
    then holds a batch in memory, never the whole table."""
    count = math.ceil(rows / SERIES_BATCH_ROWS) if series else 1
    if count <= 1:
        return [frame]
    bucket = pl.col(series).hash(seed=0) % count
    return [frame.filter(bucket == index) for index in range(count)]


def time_series_summary(table: pl.LazyFrame, date_column: str, series_column: str | None, frequency: str | None) -> dict[str, Any]:
    """Reads only the date and series columns: per-series figures stream, and the steps
    between timestamps (sorted within each series) are counted by value, a batch of
    series at a time."""
    series_id = pl.col(series_column).cast(pl.String) if series_column else pl.lit("series_1")
    valid = table.select(pl.col(date_column).cast(pl.Datetime("us")).alias("ds"), series_id.alias("uid")).drop_nulls("ds")
    per_series = valid.group_by("uid").agg(pl.len().alias("length"), pl.col("ds").min().alias("start"), pl.col("ds").max().alias("end")).sort("uid").collect()
    step_counts = _step_counts(series_batches(valid, "uid" if series_column else None, int(per_series["length"].sum())))
    positive = step_counts.filter(pl.col("step") > timedelta(0))
    step = _median_of_counts(positive["step"], positive["count"])
    return {
        "start": _json_value(per_series["start"].min()) if per_series.height else None,
        "end": _json_value(per_series["end"].max()) if per_series.height else None,
        "frequency": frequency,
        "unparseable_timestamps": table.select(pl.len()).collect().item() - int(per_series["length"].sum()),
        # Sorted within its series, a repeated timestamp is a step of zero.
        "duplicated_timestamps": int(step_counts.filter(pl.col("step") == timedelta(0))["count"].sum()),
        "gaps": int(step_counts.filter(pl.col("step") > step)["count"].sum()) if step else 0,
        "series_count": per_series.height,
        "series_lengths": {row["uid"]: row["length"] for row in per_series.head(1000).iter_rows(named=True)},
    }


def _step_counts(batches: list[pl.LazyFrame]) -> pl.DataFrame:
    """How many times each step between consecutive timestamps of a series occurs,
    sorted by step: a handful of rows, however long the series."""
    per_batch = [batch.select(pl.col("ds").sort().diff().over("uid").alias("step")).drop_nulls().group_by("step").len("count").collect() for batch in batches]
    return pl.concat(per_batch).group_by("step").agg(pl.col("count").sum()).sort("step")


def _median_of_counts(values: pl.Series, counts: pl.Series) -> Any:
    """The median of the values repeated `counts` times (`values` sorted), the mean of
    the middle two for an even total, as Series.median answers on the repeated values."""
    total = int(counts.sum())
    if total == 0:
        return None
    ends = counts.cum_sum().to_list()

    def at(position: int) -> Any:
        return values[next(i for i, end in enumerate(ends) if end > position)]

    low, high = at((total - 1) // 2), at(total // 2)
    return low + (high - low) / 2


def dataset_statistics(table: pl.LazyFrame, types: dict[str, str], config: dict[str, Any], frequency: str | None) -> dict[str, Any]:
    numeric = [c for c, t in types.items() if t == "numeric"]
    rows = table.select(pl.len()).collect().item()
    result: dict[str, Any] = {
        "rows_count": rows,
        "columns_count": len(table.collect_schema()),
        "columns": columns_statistics(table, types, rows),
        "correlations": correlations(table, numeric),
        "time_series": None,
    }
    date_column = config.get("date_column")
    if date_column and types.get(date_column) == "datetime":
        result["time_series"] = time_series_summary(table, date_column, config.get("series_id_column"), frequency)
    return result


def _issue(code: str, message: str, column: str | None = None, rows: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    issue: dict[str, Any] = {"code": code, "message": message, "column": column}
    if rows is not None:
        issue["rows"] = rows[:20]
    return {**issue, **extra}


def forecasting_report(
    frame: pl.DataFrame, types: dict[str, str], config: dict[str, Any], frequency: str | None, horizon: int, season_length: int
) -> dict[str, Any]:
    """Errors block training; warnings deserve a look. Row numbers are 1-based data rows."""
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    date_column, target, series_column = config.get("date_column"), config.get("target_column"), config.get("series_id_column")
    indexed = frame.with_row_index("_row", offset=1)

    if not date_column:
        errors.append(_issue("no_date_column", "No date column is configured or detected"))
    elif types.get(date_column) != "datetime":
        errors.append(_issue("unparseable_timestamps", f"'{date_column}' does not hold parseable timestamps", date_column))
    if not target:
        errors.append(_issue("no_target_column", "No target column is configured or detected"))
    elif types.get(target) != "numeric":
        errors.append(_issue("non_numeric_target", f"'{target}' is {types.get(target)}, not numeric", target))
    if errors:
        return {"valid": False, "errors": errors, "warnings": warnings}

    series_id = pl.col(series_column).cast(pl.String) if series_column else pl.lit("series_1")
    data = indexed.select("_row", pl.col(date_column).alias("ds"), series_id.alias("uid"), pl.col(target).cast(pl.Float64).alias("y"))

    if (bad := data.filter(pl.col("ds").is_null())).height:
        errors.append(_issue("unparseable_timestamps", f"{bad.height} rows have no parseable timestamp", date_column, bad["_row"].to_list()))
    duplicated = data.filter(pl.col("ds").is_not_null() & pl.struct("uid", "ds").is_duplicated())
    if duplicated.height:
        errors.append(_issue("duplicated_timestamps", f"{duplicated.height} rows repeat a timestamp of their series", date_column, duplicated["_row"].to_list()))
    if frequency is None:
        errors.append(_issue("irregular_frequency", "The timestamps have no regular frequency", date_column))
    else:
        summary = time_series_summary(frame.lazy(), date_column, series_column, frequency)
        if summary["gaps"]:
            warnings.append(_issue("gaps", f"{summary['gaps']} gaps longer than one '{frequency}' step", date_column, count=summary["gaps"]))

    missing = data.filter(pl.col("y").is_null() | pl.col("y").is_nan())
    if missing.height:
        warnings.append(_issue("missing_target", f"{missing.height} rows have no target value", target, missing["_row"].to_list()))

    per_series = data.drop_nulls("y").group_by("uid").agg(pl.len().alias("length"), pl.col("y").n_unique().alias("distinct")).sort("uid")
    needed = horizon + season_length + 1
    if (short := per_series.filter(pl.col("length") < needed)).height:
        errors.append(
            _issue("series_too_short", f"{short.height} series have fewer than {needed} points (horizon {horizon} + season {season_length} + 1)", target, series=short["uid"].head(20).to_list())
        )
    if (constant := per_series.filter(pl.col("distinct") <= 1)).height:
        warnings.append(_issue("constant_series", f"{constant.height} series never change value", target, series=constant["uid"].head(20).to_list()))
    return {"valid": not errors, "errors": errors, "warnings": warnings}
