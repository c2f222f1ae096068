"""The training job's long frame (statsforecast's layout), before it is put on the
frequency's grid (test_grid.py), is the same whether Polars or
pandas sorts it: Polars sorts uploads whose ids are text and timestamps dates, pandas the
rest, in the order of the ids as text; an upload that holds each series' rows together
and in time order only has its series put in order."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
import pytest

from vur.forecasting import training

CONFIG = {"date_column": "timestamp", "target_column": "value", "series_id_column": "series"}


def _upload() -> pl.DataFrame:
    """Rows in no order, ids whose text order is not their natural one, repeated
    timestamps, missing timestamps and values."""
    rng = np.random.default_rng(1)
    rows = 3000
    stamps = pd.date_range("2026-01-01", periods=rows, freq="h").to_numpy()[rng.permutation(rows)]
    frame = pl.DataFrame({"timestamp": stamps, "value": rng.normal(size=rows), "series": rng.choice(["b", "a", "é", "Z", "a10", "a9"], rows), "x": rng.normal(size=rows)})
    frame = frame.with_columns(
        value=pl.when(pl.int_range(rows) % 97 == 0).then(None).otherwise(pl.col("value")),
        timestamp=pl.when(pl.int_range(rows) % 101 == 0).then(None).otherwise(pl.col("timestamp")),
    )
    return pl.concat([frame, frame.head(50)])


def _by_pandas(frame: pl.DataFrame, config: dict) -> pd.DataFrame:
    """What the long frame is: every step in pandas."""
    data = frame.to_pandas()
    series, exogenous = config.get("series_id_column"), config.get("exogenous") or []
    long = pd.DataFrame(
        {
            "unique_id": data[series].astype(str) if series else "series_1",
            "ds": pd.to_datetime(data[config["date_column"]]),
            "y": data[config["target_column"]],
            **{column: data[column] for column in exogenous},
        }
    )
    long = long.dropna(subset=["ds"]).sort_values(["unique_id", "ds"], kind="stable")
    if split := config.get("split"):
        by_series = long.groupby("unique_id")
        long["held_out"] = by_series.cumcount() / by_series["ds"].transform("size") >= split["train_size"] + split["validation_size"]
    return long.reset_index(drop=True)


@pytest.mark.parametrize(
    "config",
    [CONFIG, {**CONFIG, "series_id_column": None}, {**CONFIG, "exogenous": ["x"]}, {**CONFIG, "split": {"train_size": 0.6, "validation_size": 0.2}}],
    ids=["series", "one series", "exogenous", "split"],
)
@pytest.mark.parametrize(
    "change",
    [
        pl.col("series"),  # sorted by Polars
        pl.col("series").cast(pl.Categorical),  # by pandas: ids that are not text
        pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("series")).alias("series"),  # by pandas: a missing id is the text "None"
        pl.col("timestamp").dt.date(),  # by Polars: dates
        pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M"),  # by pandas: timestamps to parse
    ],
    ids=["text ids", "categorical ids", "missing id", "dates", "text timestamps"],
)
def test_the_long_frame_is_sorted_by_text_id_then_time(config: dict, change: pl.Expr) -> None:
    upload = _upload().with_columns(change)
    long = training._sorted_long(upload, config)
    pd.testing.assert_frame_equal(long, _by_pandas(upload, config), check_index_type=True)


def _grouped_upload() -> pl.DataFrame:
    """Each series' rows together and in time order (repeated timestamps too), the series
    not in the order of their ids as text; in several chunks, as a Parquet file's row groups."""
    rng = np.random.default_rng(2)
    parts = []
    for uid in ["b", "a10", "é", "Z", "a9", "a"]:
        rows = int(rng.integers(1, 60))
        stamps = np.sort(pd.date_range("2026-01-01", periods=rows, freq="h").to_numpy()[rng.integers(0, rows, rows)])
        parts.append(pl.DataFrame({"timestamp": stamps, "value": rng.normal(size=rows), "series": uid, "x": rng.normal(size=rows)}))
    return pl.concat(parts, rechunk=False)


@pytest.mark.parametrize(
    "change",
    [
        lambda frame: frame,
        lambda frame: frame.with_columns(value=pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("value"))),  # missing values
        lambda frame: frame.filter(pl.col("series") == "a"),  # one series
        lambda frame: frame.sort("series", maintain_order=True),  # already in order
        lambda frame: pl.concat([frame, frame.head(3)]),  # a series in two runs
        lambda frame: frame.with_columns(timestamp=pl.col("timestamp").reverse().over("series")),  # a series back in time
        lambda frame: frame.with_columns(timestamp=pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("timestamp"))),  # a missing timestamp
        lambda frame: frame.head(0),
    ],
    ids=["grouped", "missing values", "one series", "in order", "two runs", "back in time", "missing timestamp", "empty"],
)
@pytest.mark.parametrize("config", [CONFIG, {**CONFIG, "exogenous": ["x"]}, {**CONFIG, "split": {"train_size": 0.6, "validation_size": 0.2}}], ids=["series", "exogenous", "split"])
def test_an_upload_grouped_by_series_gives_the_same_long_frame(config: dict, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    upload = change(_grouped_upload())
    pd.testing.assert_frame_equal(training._sorted_long(upload, config), _by_pandas(upload, config), check_index_type=True)
