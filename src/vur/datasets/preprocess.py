"""Preprocessing a tabular dataset into a new one: missing values, outliers, scaling,
feature engineering and categorical encoding, as Polars expressions on a LazyFrame.
Plain functions: no database, no HTTP.

Steps run in a fixed order (missing values, outliers, normalization, feature
engineering, encoding); each is fitted on the data as the steps before it left it and
reports what it fitted (fill values, bounds, scaler statistics, categories), so that
whoever uses the new dataset can replay a step on new data or invert it: a normalized
column comes back as `x = y * scale + center`.

Steps that follow time (fills, lags, windows, differences) run per series when the
dataset has a series id column, in the order of the date column, or else in row order.
With a series id column, the mean/median fills and the outlier bounds are also fitted per
series, so that a store selling 5 a day is not judged by one selling 1000; normalization
stays global on purpose: the model inverts it on its forecasts with one center and scale
per column. NaN in a float column counts as missing, like null.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import polars as pl

from vur.datasets.exceptions import InvalidPreprocessing
from vur.datasets.schemas import (
    Differencing,
    EncodingStep,
    FeatureEngineering,
    HolidayFeatures,
    LagFeatures,
    MissingValuesStep,
    NormalizationStep,
    OutliersStep,
    PreprocessRequest,
    RollingFeatures,
    SeasonalFeatures,
)

MAX_NEW_COLUMNS = 1000
MAX_ONE_HOT_CATEGORIES = 100
MAX_ORDINAL_CATEGORIES = 1000
MAX_HOLIDAY_YEARS = 200
OUTLIER_THRESHOLDS = {"iqr": 1.5, "zscore": 3.0}
# A step fitted per series records the figures of this many series (the first by id), not
# of all of them: a dataset may hold tens of thousands.
MAX_SERIES_IN_STEP = 100
Step = dict[str, Any]


@dataclass(frozen=True)
class Timeline:
    """How time runs through the table: per series if there is a series id column, in
    the order of the date column if there is one, else in row order."""

    date: str | None
    series: str | None

    def follow(self, expression: pl.Expr) -> pl.Expr:
        if self.date is None and self.series is None:
            return expression
        return expression.over(partition_by=self.series, order_by=self.date)

    def describe(self) -> dict[str, str | None]:
        return {"date_column": self.date, "series_id_column": self.series}


@dataclass(frozen=True)
class Preprocessed:
    frame: pl.LazyFrame
    steps: list[Step]
    date_column: str | None


def apply(frame: pl.LazyFrame, request: PreprocessRequest, config: dict[str, Any]) -> Preprocessed:
    """The transformed frame (still lazy) and the applied steps. Raises
    InvalidPreprocessing (422) for a request that does not fit the data."""
    timeline = resolve_timeline(frame.collect_schema(), request.date_column, config)
    steps: list[Step] = []
    if request.missing_values:
        frame = _record(steps, fill_missing(frame, request.missing_values, timeline))
    if request.outliers:
        frame = _record(steps, handle_outliers(frame, request.outliers, timeline.series))
    if request.normalization:
        frame = _record(steps, normalize(frame, request.normalization))
    if request.feature_engineering:
        frame, added = engineer_features(frame, request.feature_engineering, timeline, config.get("target_column"))
        steps += added
    if request.encoding:
        frame = _record(steps, encode(frame, request.encoding))
    return Preprocessed(frame, steps, timeline.date)


def _record(steps: list[Step], result: tuple[pl.LazyFrame, Step]) -> pl.LazyFrame:
    frame, step = result
    steps.append(step)
    return frame


def resolve_timeline(schema: pl.Schema, date_column: str | None, config: dict[str, Any]) -> Timeline:
    date = date_column or config.get("date_column")
    if date is not None and date not in schema:
        raise InvalidPreprocessing("Unknown date column", {"date_column": f"'{date}' is not a column of the dataset"})
    if date is not None and not schema[date].is_temporal():
        raise InvalidPreprocessing("The date column does not hold timestamps", {"date_column": f"'{date}' is {schema[date]}, not timestamps"})
    return Timeline(date, config.get("series_id_column"))


# --- shared helpers ----------------------------------------------------------


def _known(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column with NaN counted as missing, like null."""
    return pl.col(name).fill_nan(None) if dtype.is_float() else pl.col(name)


def require_columns(schema: pl.Schema, field: str, columns: list[str], *, numeric: bool = False) -> None:
    unknown = [c for c in columns if c not in schema]
    if unknown:
        raise InvalidPreprocessing(f"Unknown columns in {field}", {field: f"not columns of the dataset: {unknown}"})
    if numeric:
        wrong = [f"{c} ({schema[c]})" for c in columns if not schema[c].is_numeric()]
        if wrong:
            raise InvalidPreprocessing(f"{field} needs numeric columns", {field: f"not numeric: {wrong}"})


def aggregate(frame: pl.LazyFrame, wanted: dict[str, dict[str, pl.Expr]]) -> dict[str, dict[str, Any]]:
    """Named figures per column, computed in one pass over the frame."""
    labels = [(column, figure) for column, figures in wanted.items() for figure in figures]
    row = frame.select(wanted[column][figure].alias(f"{i}") for i, (column, figure) in enumerate(labels)).collect().row(0)
    result: dict[str, dict[str, Any]] = {column: {} for column in wanted}
    for (column, figure), value in zip(labels, row, strict=True):
        result[column][figure] = value
    return result


def require_values(field: str, fitted: dict[str, dict[str, Any]]) -> None:
    """Every fitted figure is a finite number: an empty column, or one holding an
    infinity, has nothing a step could use (nor that JSON could keep)."""
    unusable = [column for column, figures in fitted.items() if any(value is None or not math.isfinite(value) for value in figures.values())]
    if unusable:
        raise InvalidPreprocessing(f"Nothing to fit in some columns of {field}", {field: f"no values, or infinite ones, in: {unusable}"})


def _count(frame: pl.LazyFrame, condition: pl.Expr) -> int:
    return frame.select(condition.sum()).collect().item()


def _finite(expression: pl.Expr) -> pl.Expr:
    """The value where it is a finite number, else null."""
    return pl.when(expression.is_finite()).then(expression)


def fit_per_series(
    frame: pl.LazyFrame,
    series: str,
    wanted: dict[str, dict[str, pl.Expr]],
    usable: Callable[[dict[str, pl.Expr]], pl.Expr],
    derived: Callable[[dict[str, pl.Expr]], dict[str, pl.Expr]] = lambda figures: {},
) -> dict[str, Any]:
    """Named figures per column and series (the aggregated `wanted` ones, then those
    `derived` from them), in one pass: how many series there are, per column how many
    series have no `usable` figures, and the figures of the first MAX_SERIES_IN_STEP
    series by id (null where not usable, so the record stays finite). Ids are keys as
    text; rows with no id are one series, "null"."""
    index = {c: i for i, c in enumerate(wanted)}
    extra = {c: derived({f: pl.col(f"__fit_{index[c]}_{f}") for f in wanted[c]}) for c in wanted}
    labels = {c: [*wanted[c], *extra[c]] for c in wanted}
    names = {(c, f): f"__fit_{index[c]}_{f}" for c in wanted for f in labels[c]}
    flags = {c: f"__usable_{i}" for c, i in index.items()}
    table = (
        frame.group_by(series)
        .agg(expression.alias(names[c, f]) for c in wanted for f, expression in wanted[c].items())
        .with_columns(expression.alias(names[c, f]) for c in extra for f, expression in extra[c].items())
        .with_columns(usable({f: pl.col(names[c, f]) for f in labels[c]}).fill_null(False).alias(flags[c]) for c in wanted)
        .sort(series, nulls_last=True)
        .collect()
    )
    shown = table.head(MAX_SERIES_IN_STEP)
    ids = shown[series].cast(pl.String).fill_null("null").to_list()
    rows = list(zip(ids, shown.iter_rows(named=True), strict=True))
    return {
        "series_count": table.height,
        "figures": {c: {key: {f: row[names[c, f]] for f in labels[c]} if row[flags[c]] else None for key, row in rows} for c in wanted},
        "unusable": {c: table.height - int(table[flags[c]].sum()) for c in wanted},
    }


# --- missing values ----------------------------------------------------------

_FILLS_ALONG_TIME = {
    "forward_fill": pl.Expr.forward_fill,
    "backward_fill": pl.Expr.backward_fill,
    "interpolate": pl.Expr.interpolate,
}
_FILL_STATISTICS = {"mean": pl.Expr.mean, "median": pl.Expr.median}


def fill_missing(frame: pl.LazyFrame, step: MissingValuesStep, timeline: Timeline) -> tuple[pl.LazyFrame, Step]:
    """mean and median fill each series with its own statistic when there is a series id
    column; a series with no value in the column gets the whole column's."""
    field = "missing_values.columns"
    schema = frame.collect_schema()
    require_columns(schema, field, step.columns, numeric=step.method in ("interpolate", "mean", "median"))
    known = {c: _known(c, schema[c]) for c in step.columns}
    if step.method == "constant":
        check_constant(schema, step.columns, step.value)
    missing = {c: figures["missing"] for c, figures in aggregate(frame, {c: {"missing": e.is_null().sum()} for c, e in known.items()}).items()}
    params: dict[str, Any] = {"missing": missing}

    if step.method == "drop":
        incomplete = pl.any_horizontal(e.is_null() for e in known.values())
        params["rows_removed"] = _count(frame, incomplete)
        frame = frame.filter(~incomplete)
    elif step.method in _FILLS_ALONG_TIME:
        fill = _FILLS_ALONG_TIME[step.method]
        frame = frame.with_columns(timeline.follow(fill(e)).alias(c) for c, e in known.items())
        params.update(timeline.describe())
    else:
        if step.method == "constant":
            values = dict.fromkeys(step.columns, step.value)
        else:
            statistic = _FILL_STATISTICS[step.method]
            fitted = aggregate(frame, {c: {"value": statistic(e)} for c, e in known.items()})
            require_values(field, fitted)
            values = {c: figures["value"] for c, figures in fitted.items()}
        fills = {c: pl.lit(value) for c, value in values.items()}
        params["fill_values"] = values
        if step.method != "constant" and timeline.series is not None:
            own = {c: statistic(e) for c, e in known.items()}
            per_series = fit_per_series(frame, timeline.series, {c: {"value": value} for c, value in own.items()}, lambda f: f["value"].is_finite())
            fills = {c: _finite(own[c]).over(timeline.series).fill_null(fills[c]) for c in step.columns}
            params |= {
                "per_series": True,
                "series_id_column": timeline.series,
                "series_count": per_series["series_count"],
                "series_fill_values": {c: {key: None if f is None else f["value"] for key, f in shown.items()} for c, shown in per_series["figures"].items()},
                # Series with no value in the column: filled with its `fill_values` instead.
                "fallback_series": per_series["unusable"],
            }
        frame = frame.with_columns(known[c].fill_null(fill).alias(c) for c, fill in fills.items())
    return frame, {"step": "missing_values", "method": step.method, "columns": step.columns, "params": params}


def check_constant(schema: pl.Schema, columns: list[str], value: Any) -> None:
    """The fill value must be of the column's kind: a number, a text or true/false."""

    def fits(dtype: pl.DataType) -> bool:
        if isinstance(value, bool):
            return dtype == pl.Boolean
        if isinstance(value, int | float):
            return dtype.is_numeric()
        return dtype in (pl.String, pl.Categorical)

    wrong = [f"{c} ({schema[c]})" for c in columns if not fits(schema[c])]
    if wrong:
        raise InvalidPreprocessing("The constant does not fit some columns", {"missing_values.value": f"{value!r} cannot fill: {wrong}"})


# --- outliers ----------------------------------------------------------------


_OUTLIER_STATISTICS = {
    "iqr": lambda e: {"q1": e.quantile(0.25, "linear"), "q3": e.quantile(0.75, "linear")},
    "zscore": lambda e: {"mean": e.mean(), "std": e.std(ddof=0)},
}


def outlier_bounds(fitted: dict[str, Any], threshold: float) -> dict[str, Any]:
    """The bounds fitted statistics make, numbers or expressions alike."""
    if "q1" in fitted:
        spread = fitted["q3"] - fitted["q1"]
        return {"lower": fitted["q1"] - threshold * spread, "upper": fitted["q3"] + threshold * spread}
    return {"lower": fitted["mean"] - threshold * fitted["std"], "upper": fitted["mean"] + threshold * fitted["std"]}


def _has_spread(figures: dict[str, pl.Expr]) -> pl.Expr:
    """Finite bounds apart from each other: a series with one known value, or all alike,
    has no spread to call anything an outlier by."""
    return figures["lower"].is_finite() & figures["upper"].is_finite() & (figures["upper"] > figures["lower"])


def handle_outliers(frame: pl.LazyFrame, step: OutliersStep, series: str | None) -> tuple[pl.LazyFrame, Step]:
    """Bounds per series when there is a series id column (a series without spread keeps
    its values), else over the whole column; `bounds` are the whole column's either way."""
    field = "outliers.columns"
    schema = frame.collect_schema()
    require_columns(schema, field, step.columns, numeric=True)
    known = {c: _known(c, schema[c]) for c in step.columns}
    threshold = step.threshold if step.threshold is not None else OUTLIER_THRESHOLDS[step.method]
    statistics = _OUTLIER_STATISTICS[step.method]
    fitted = aggregate(frame, {c: statistics(e) for c, e in known.items()})
    require_values(field, fitted)
    bounds = {c: {**f, **outlier_bounds(f, threshold)} for c, f in fitted.items()}
    params: dict[str, Any] = {"threshold": threshold, "action": step.action, "bounds": bounds}

    if series is None:
        lower, upper = {c: pl.lit(b["lower"]) for c, b in bounds.items()}, {c: pl.lit(b["upper"]) for c, b in bounds.items()}
        temporary: list[str] = []
    else:
        per_series = fit_per_series(frame, series, {c: statistics(e) for c, e in known.items()}, _has_spread, lambda f: outlier_bounds(f, threshold))
        params |= {
            "per_series": True,
            "series_id_column": series,
            "series_count": per_series["series_count"],
            "series_bounds": per_series["figures"],
            # Series left untouched for lack of spread.
            "untouched_series": per_series["unusable"],
        }
        # Each row gets its series' statistics, then bounds (null without spread: nothing
        # is outside), in columns kept for the step's few passes and dropped at its end.
        names = {c: {f: f"__{f}_{i}" for f in (*fitted[c], "lower", "upper")} for i, c in enumerate(step.columns)}
        frame = frame.with_columns(expression.over(series).alias(names[c][f]) for c, e in known.items() for f, expression in statistics(e).items())
        rows = {c: outlier_bounds({f: pl.col(name) for f, name in names[c].items()}, threshold) for c in step.columns}
        frame = frame.with_columns(
            pl.when(_has_spread(rows[c])).then(rows[c][side]).alias(names[c][side]) for c in step.columns for side in ("lower", "upper")
        )
        lower, upper = {c: pl.col(names[c]["lower"]) for c in step.columns}, {c: pl.col(names[c]["upper"]) for c in step.columns}
        temporary = [name for columns in names.values() for name in columns.values()]

    outside = {c: (e.is_not_null() & ~e.is_between(lower[c], upper[c])).fill_null(False) for c, e in known.items()}
    counts = aggregate(frame, {c: {"outliers": e.sum()} for c, e in outside.items()})
    params["outliers"] = {c: f["outliers"] for c, f in counts.items()}
    if step.action == "remove":
        any_outside = pl.any_horizontal(outside.values())
        params["rows_removed"] = _count(frame, any_outside)
        frame = frame.filter(~any_outside)
    else:
        # As floats: clipping an integer column to a fractional bound would truncate it.
        frame = frame.with_columns(e.cast(pl.Float64).clip(lower[c], upper[c]).alias(c) for c, e in known.items())
    return frame.drop(temporary), {"step": "outliers", "method": step.method, "columns": step.columns, "params": params}


# --- normalization -----------------------------------------------------------

# The statistics each scaler fits, and how they make its (center, scale).
_SCALERS = {
    "minmax": (lambda e: {"min": e.min(), "max": e.max()}, lambda f: (f["min"], f["max"] - f["min"])),
    "standard": (lambda e: {"mean": e.mean(), "std": e.std(ddof=0)}, lambda f: (f["mean"], f["std"])),
    "robust": (lambda e: {"median": e.median(), "q1": e.quantile(0.25, "linear"), "q3": e.quantile(0.75, "linear")}, lambda f: (f["median"], f["q3"] - f["q1"])),
}


def normalize(frame: pl.LazyFrame, step: NormalizationStep) -> tuple[pl.LazyFrame, Step]:
    field = "normalization.columns"
    schema = frame.collect_schema()
    require_columns(schema, field, step.columns, numeric=True)
    known = {c: _known(c, schema[c]) for c in step.columns}
    statistics, center_and_scale = _SCALERS[step.method]
    fitted = aggregate(frame, {c: statistics(e) for c, e in known.items()})
    require_values(field, fitted)
    params = {}
    for column, figures in fitted.items():
        center, scale = center_and_scale(figures)
        # A constant column has no spread: it becomes 0 rather than a division by zero.
        params[column] = {**figures, "center": center, "scale": scale or 1}
    frame = frame.with_columns(((e.cast(pl.Float64) - params[c]["center"]) / params[c]["scale"]).alias(c) for c, e in known.items())
    return frame, {"step": "normalization", "method": step.method, "columns": step.columns, "params": params}


# --- feature engineering -----------------------------------------------------

_ROLLING = {"mean": pl.Expr.rolling_mean, "std": pl.Expr.rolling_std, "min": pl.Expr.rolling_min, "max": pl.Expr.rolling_max}
_CALENDAR = {
    "month": lambda d: d.dt.month(),
    "quarter": lambda d: d.dt.quarter(),
    "day_of_week": lambda d: d.dt.weekday(),  # ISO: Monday 1 … Sunday 7
    "hour": lambda d: d.dt.hour(),
    "week_of_year": lambda d: d.dt.week(),  # ISO week
}


@dataclass(frozen=True)
class NewColumns:
    """The columns one feature block adds, and the step that records it."""

    expressions: dict[str, pl.Expr]
    step: Step


def engineer_features(frame: pl.LazyFrame, features: FeatureEngineering, timeline: Timeline, target: str | None) -> tuple[pl.LazyFrame, list[Step]]:
    """Every enabled block reads the columns as they were before feature engineering
    (a lag of a rolling mean needs a second request)."""
    schema = frame.collect_schema()
    builders = {
        "lag_features": lambda block, field: lag_features(schema, block, field, timeline, target),
        "rolling_features": lambda block, field: rolling_features(schema, block, field, timeline, target),
        "differencing": lambda block, field: differences(schema, block, field, timeline, target),
        "seasonal_features": lambda block, field: calendar_features(schema, block, field, timeline),
        "holiday_features": lambda block, field: holiday_features(frame, block, field, timeline),
    }
    made = {f"feature_engineering.{name}": builders[name](block, f"feature_engineering.{name}") for name, block in features.enabled().items()}
    check_new_names(schema.names(), {field: list(new.expressions) for field, new in made.items()}, "feature_engineering")
    expressions = [expression.alias(column) for new in made.values() for column, expression in new.expressions.items()]
    return frame.with_columns(expressions), [new.step for new in made.values()]


def check_new_names(existing: Collection[str], names: dict[str, list[str]], limit_field: str) -> None:
    """New columns, by the request field that makes them: not too many, and none that
    takes the name of an existing column or of another new one."""
    total = sum(len(columns) for columns in names.values())
    if total > MAX_NEW_COLUMNS:
        raise InvalidPreprocessing(f"The request would add {total} columns, over the limit of {MAX_NEW_COLUMNS}", {limit_field: f"{total} new columns"})
    repeated = Counter(column for columns in names.values() for column in columns)
    for field, columns in names.items():
        taken = sorted({c for c in columns if c in existing or repeated[c] > 1})
        if taken:
            raise InvalidPreprocessing("Some new columns would take names already in use", {field: f"names already in use: {taken}"})


def _source_columns(schema: pl.Schema, block: LagFeatures | RollingFeatures | Differencing, field: str, target: str | None) -> list[str]:
    """The block's columns, by default the target; they must be numeric."""
    columns = block.columns or ([target] if target else [])
    if not columns:
        raise InvalidPreprocessing(f"{field} needs columns", {f"{field}.columns": "no columns given and the dataset has no target column configured"})
    require_columns(schema, f"{field}.columns", columns, numeric=True)
    return columns


def lag_features(schema: pl.Schema, block: LagFeatures, field: str, timeline: Timeline, target: str | None) -> NewColumns:
    columns = _source_columns(schema, block, field, target)
    expressions = {f"{c}_lag_{lag}": timeline.follow(_known(c, schema[c]).shift(lag)) for c in columns for lag in block.lags}
    params = {"lags": block.lags, "added": list(expressions), **timeline.describe()}
    return NewColumns(expressions, {"step": "lag_features", "method": None, "columns": columns, "params": params})


def rolling_features(schema: pl.Schema, block: RollingFeatures, field: str, timeline: Timeline, target: str | None) -> NewColumns:
    """Windows over the previous values only (shifted by one), so a row never sees its
    own target; a window yields a value once it is full."""
    columns = _source_columns(schema, block, field, target)
    expressions = {
        f"{c}_rolling_{function}_{window}": timeline.follow(_ROLLING[function](_known(c, schema[c]).shift(1), window))
        for c in columns
        for window in block.windows
        for function in block.functions
    }
    params = {"windows": block.windows, "functions": block.functions, "shift": 1, "added": list(expressions), **timeline.describe()}
    return NewColumns(expressions, {"step": "rolling_features", "method": None, "columns": columns, "params": params})


def differences(schema: pl.Schema, block: Differencing, field: str, timeline: Timeline, target: str | None) -> NewColumns:
    columns = _source_columns(schema, block, field, target)
    expressions = {f"{c}_diff_{period}": timeline.follow(_known(c, schema[c]).diff(period)) for c in columns for period in block.periods}
    params = {"periods": block.periods, "added": list(expressions), **timeline.describe()}
    return NewColumns(expressions, {"step": "differencing", "method": None, "columns": columns, "params": params})


def _require_date(timeline: Timeline, field: str) -> str:
    if timeline.date is None:
        raise InvalidPreprocessing(f"{field} needs a date column", {field: "no date column: configure one (PUT /config) or give date_column"})
    return timeline.date


def calendar_features(schema: pl.Schema, block: SeasonalFeatures, field: str, timeline: Timeline) -> NewColumns:
    date = _require_date(timeline, field)
    # A Date has no time of day; as a timestamp its hour is 0.
    timestamps = pl.col(date).cast(pl.Datetime("us")) if schema[date] == pl.Date else pl.col(date)
    expressions = {part: _CALENDAR[part](timestamps) for part in block.extract}
    params = {"date_column": date, "added": list(expressions)}
    return NewColumns(expressions, {"step": "seasonal_features", "method": None, "columns": [date], "params": params})


def holiday_features(frame: pl.LazyFrame, block: HolidayFeatures, field: str, timeline: Timeline) -> NewColumns:
    """`is_holiday`: 1 on the country's public holidays (from the `holidays` package), else 0."""
    import holidays

    date = _require_date(timeline, field)
    supported = holidays.list_supported_countries()
    if block.country not in supported:
        raise InvalidPreprocessing("Unknown country for holidays", {f"{field}.country": f"'{block.country}' is not a country the holidays package knows"})
    if block.subdivision is not None and block.subdivision not in supported[block.country]:
        raise InvalidPreprocessing("Unknown subdivision for holidays", {f"{field}.subdivision": f"'{block.subdivision}' is not a subdivision of {block.country}"})
    first, last = frame.select(pl.col(date).dt.year().min().alias("first"), pl.col(date).dt.year().max().alias("last")).collect().row(0)
    if first is not None and last - first >= MAX_HOLIDAY_YEARS:
        raise InvalidPreprocessing("The dates span too many years for holidays", {field: f"{first}-{last}: more than {MAX_HOLIDAY_YEARS} years"})
    years = list(range(first, last + 1)) if first is not None else []
    calendar = holidays.country_holidays(block.country, subdiv=block.subdivision, years=years)
    days = pl.Series(sorted(calendar), dtype=pl.Date)
    expressions = {"is_holiday": pl.col(date).dt.date().is_in(days.implode()).cast(pl.UInt8)}
    params = {"country": block.country, "subdivision": block.subdivision, "years": [first, last], "holidays": days.len(), "holidays_version": holidays.__version__, "added": ["is_holiday"]}
    return NewColumns(expressions, {"step": "holiday_features", "method": None, "columns": [date], "params": params})


# --- encoding ----------------------------------------------------------------


def _encodable(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Boolean) or dtype.is_integer()


def encode(frame: pl.LazyFrame, step: EncodingStep) -> tuple[pl.LazyFrame, Step]:
    """one_hot: a 0/1 column per category, `<column>_<category>`, replacing the column;
    ordinal: the category's position in sorted order. Nulls stay null (all zeros)."""
    field = "encoding.columns"
    schema = frame.collect_schema()
    require_columns(schema, field, step.columns)
    wrong = [f"{c} ({schema[c]})" for c in step.columns if not _encodable(schema[c])]
    if wrong:
        raise InvalidPreprocessing("Only text, boolean and integer columns can be encoded", {field: f"cannot encode: {wrong}"})
    values = {c: pl.col(c).cast(pl.String) if schema[c] == pl.Categorical else pl.col(c) for c in step.columns}
    limit = MAX_ONE_HOT_CATEGORIES if step.method == "one_hot" else MAX_ORDINAL_CATEGORIES
    counts = aggregate(frame, {c: {"categories": e.drop_nulls().n_unique()} for c, e in values.items()})
    too_many = [f"{c} ({f['categories']})" for c, f in counts.items() if f["categories"] > limit]
    if too_many:
        raise InvalidPreprocessing(f"Too many categories for {step.method} encoding (limit {limit})", {field: f"too many categories: {too_many}"})
    found = frame.select(e.drop_nulls().unique().sort().implode().alias(c) for c, e in values.items()).collect().row(0, named=True)
    categories = {c: found[c] for c in step.columns}

    if step.method == "ordinal":
        frame = frame.with_columns(
            values[c].replace_strict(categories[c], list(range(len(categories[c]))), default=None, return_dtype=pl.UInt32).alias(c) for c in step.columns
        )
        params = {c: {"categories": categories[c]} for c in step.columns}
        return frame, {"step": "encoding", "method": step.method, "columns": step.columns, "params": params}

    names = {c: [f"{c}_{category}" for category in categories[c]] for c in step.columns}
    remaining = [c for c in schema.names() if c not in step.columns]
    check_new_names(remaining, {field: [name for c in step.columns for name in names[c]]}, field)
    indicators = [(values[c] == category).fill_null(False).cast(pl.UInt8).alias(name) for c in step.columns for category, name in zip(categories[c], names[c], strict=True)]
    frame = frame.with_columns(indicators).drop(step.columns)
    params = {c: {"categories": categories[c], "columns": names[c]} for c in step.columns}
    return frame, {"step": "encoding", "method": step.method, "columns": step.columns, "params": params}
