"""Profiling and forecasting checks over a dataset's typed Parquet. Plain functions on
Polars frames: no database, no HTTP."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

HISTOGRAM_BINS = 20
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


def columns_statistics(frame: pl.DataFrame, types: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per-column figures in three parallel passes over the frame: counts and moments,
    then histograms (which need each column's range), then top values of non-numeric
    columns. Polars runs the expressions of a pass on all cores."""
    schema = frame.schema
    numeric = [c for c, d in schema.items() if d.is_numeric()]
    temporal = [c for c, d in schema.items() if d.is_temporal()]
    others = [c for c in frame.columns if c not in numeric]
    moments = {
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
    expressions = []
    for index, name in enumerate(frame.columns):
        known = _known(name, schema[name])
        wanted = moments if name in numeric else {k: moments[k] for k in ("missing", "unique")}
        if name in temporal:
            wanted = {**wanted, "min": moments["min"], "max": moments["max"]}
        expressions += [make(name, known).alias(f"{index}|{figure}") for figure, make in wanted.items()]
    figures = frame.select(expressions).row(0, named=True)
    result: dict[str, dict[str, Any]] = {name: {"type": types.get(name, "text")} for name in frame.columns}
    for label, value in figures.items():
        index, figure = label.split("|")
        result[frame.columns[int(index)]][figure] = _json_value(value)
    for name, stats in result.items():
        stats["count"] = frame.height - stats["missing"]

    ranged = [c for c in numeric if result[c].get("min") is not None and result[c]["min"] != result[c]["max"]]
    histograms = pl.collect_all([_histogram_query(frame, c, result[c]["min"], result[c]["max"], schema[c]) for c in ranged]) if ranged else []
    for name, counts in zip(ranged, histograms, strict=True):
        low, high = result[name]["min"], result[name]["max"]
        width = (high - low) / HISTOGRAM_BINS
        per_bin = [0] * HISTOGRAM_BINS
        for position, count in counts.iter_rows():
            per_bin[position] = count
        result[name]["histogram"] = {"edges": [low + i * width for i in range(HISTOGRAM_BINS + 1)], "counts": per_bin}
    for name in numeric:
        if result[name]["count"] and name not in ranged:
            result[name]["histogram"] = {"edges": [result[name]["min"], result[name]["max"]], "counts": [result[name]["count"]]}

    tops = pl.collect_all([_top_values_query(frame, c) for c in others]) if others else []
    for name, counts in zip(others, tops, strict=True):
        if counts.height:
            result[name]["top_values"] = [{"value": value, "count": count} for value, count in counts.iter_rows()]
    return result


def _histogram_query(frame: pl.DataFrame, name: str, low: float, high: float, dtype: pl.DataType) -> pl.LazyFrame:
    width = (high - low) / HISTOGRAM_BINS
    position = ((_known(name, dtype).cast(pl.Float64) - low) / width).floor().clip(0, HISTOGRAM_BINS - 1).cast(pl.Int64)
    return frame.lazy().select(position.alias("bin")).drop_nulls().group_by("bin").len()


def _top_values_query(frame: pl.DataFrame, name: str) -> pl.LazyFrame:
    values = pl.col(name).cast(pl.String)
    return (
        frame.lazy()
        .select(values.alias("value"))
        .drop_nulls()
        .group_by("value")
        .len("count")
        .sort(["count", "value"], descending=[True, False])
        .head(TOP_VALUES)
    )


def correlations(frame: pl.DataFrame, numeric: list[str]) -> dict[str, dict[str, float | None]]:
    """Pearson correlation of every pair of numeric columns, over rows where both are known."""
    if len(numeric) < 2:
        return {}
    matrix = frame.select(numeric).cast(pl.Float64).fill_nan(None).drop_nulls()
    if matrix.height < 2:
        return {}
    pairs = [(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1 :]]
    values = matrix.select([pl.corr(a, b).alias(f"c{k}") for k, (a, b) in enumerate(pairs)]).row(0)
    result: dict[str, dict[str, float | None]] = {a: {a: 1.0} for a in numeric}
    for (a, b), value in zip(pairs, values, strict=True):
        result[a][b] = result[b][a] = _finite(value)
    return result


def time_series_summary(frame: pl.DataFrame, date_column: str, series_column: str | None, frequency: str | None) -> dict[str, Any]:
    series_id = pl.col(series_column).cast(pl.String) if series_column else pl.lit("series_1")
    dates = frame.select(pl.col(date_column).cast(pl.Datetime("us")).alias("ds"), series_id.alias("uid"))
    valid = dates.drop_nulls("ds")
    per_series = valid.group_by("uid").agg(
        pl.len().alias("length"),
        pl.col("ds").min().alias("start"),
        pl.col("ds").max().alias("end"),
        (pl.len() - pl.col("ds").n_unique()).alias("duplicated"),
    ).sort("uid")
    step = _median_step(valid)
    gaps = 0
    if step:
        gaps = int(
            valid.sort("uid", "ds")
            .with_columns(pl.col("ds").diff().over("uid").alias("gap"))
            .filter(pl.col("gap") > step)
            .height
        )
    return {
        "start": _json_value(valid["ds"].min()) if valid.height else None,
        "end": _json_value(valid["ds"].max()) if valid.height else None,
        "frequency": frequency,
        "unparseable_timestamps": dates.height - valid.height,
        "duplicated_timestamps": int(per_series["duplicated"].sum()),
        "gaps": gaps,
        "series_count": per_series.height,
        "series_lengths": {row["uid"]: row["length"] for row in per_series.head(1000).iter_rows(named=True)},
    }


def _median_step(dates: pl.DataFrame) -> Any:
    steps = dates.sort("uid", "ds").select(pl.col("ds").diff().over("uid").alias("step")).drop_nulls()
    steps = steps.filter(pl.col("step") > pl.duration(microseconds=0))
    return steps["step"].median() if steps.height else None


def dataset_statistics(frame: pl.DataFrame, types: dict[str, str], config: dict[str, Any], frequency: str | None) -> dict[str, Any]:
    numeric = [c for c, t in types.items() if t == "numeric"]
    result: dict[str, Any] = {
        "rows_count": frame.height,
        "columns_count": frame.width,
        "columns": columns_statistics(frame, types),
        "correlations": correlations(frame, numeric),
        "time_series": None,
    }
    date_column = config.get("date_column")
    if date_column and types.get(date_column) == "datetime":
        result["time_series"] = time_series_summary(frame, date_column, config.get("series_id_column"), frequency)
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
        summary = time_series_summary(frame, date_column, series_column, frequency)
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
