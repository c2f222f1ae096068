"""Series on their frequency's grid. Every model reads a series' rows as consecutive
steps of the dataset's frequency, so training needs a value at each step between a
series' first and last observation: a missing row, or a row without a value, would
otherwise join the points on either side of it as if they were one step apart.

Works on the training job's long frame (unique_id, ds and value columns, sorted by id
then time). Plain functions, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vur.forecasting.forecasters import SeriesRuns, offset_of

if TYPE_CHECKING:
    import pandas as pd


class OffGrid(ValueError):
    """A row the frequency's grid has no place for: off its steps, or a timestamp repeated."""


@dataclass(frozen=True)
class Gaps:
    """What `regularize` filled and left out."""

    filled: int = 0  # steps inside a series' span that had no row, or a missing value
    series_filled: int = 0  # series with at least one such step
    empty: list[str] = field(default_factory=list)  # series without one complete row: left out

    def notes(self, columns: list[str]) -> list[str]:
        notes = []
        if self.filled:
            notes.append(
                f"{self.filled:,} missing point(s) inside {self.series_filled} series (a step without a row, or without a value of {', '.join(columns)}) "
                "are filled by linear interpolation for training; preprocess the dataset (missing_values) to fill missing values another way"
            )
        if self.empty:
            shown = ", ".join(repr(uid) for uid in self.empty[:5]) + (", …" if len(self.empty) > 5 else "")
            notes.append(f"{len(self.empty)} series have no complete row (a value of {', '.join(columns)}) and are left out: {shown}")
        return notes


def regularize(long: pd.DataFrame, freq: str, columns: list[str]) -> tuple[pd.DataFrame, Gaps]:
    """`long` with each series from its first complete row (every one of `columns` known)
    to its last, on its frequency's grid: a step without a row gets one, and missing
    values in between are interpolated linearly (in time, the steps being equal). Rows
    before a series' first complete row or after its last are left out, as is a series
    without any. A frame that needs nothing filled comes back as it is, without a copy.
    Raises OffGrid for a row between two steps or a repeated timestamp."""
    import numpy as np
    import pandas as pd

    complete = np.logical_and.reduce([long[column].notna().to_numpy() for column in columns])
    runs = SeriesRuns.of(long)
    if complete.all():
        spans, empty, incomplete = long if isinstance(long.index, pd.RangeIndex) else long.reset_index(drop=True), [], np.empty(0, dtype=np.int64)
    else:
        spans, runs, empty, incomplete = _spans(long, complete, runs)
    missing_steps = _missing_steps(spans, runs, freq)
    gapped = np.union1d(np.flatnonzero(missing_steps), incomplete)
    if not gapped.size:
        return spans, Gaps(empty=empty)
    filled = [_filled_series(spans.iloc[runs.starts[i] : runs.starts[i] + runs.lengths[i]], freq, columns) for i in gapped]
    untouched = spans[~np.isin(runs.codes(), gapped)]
    result = pd.concat([untouched, *filled], ignore_index=True).sort_values(["unique_id", "ds"], kind="stable", ignore_index=True)
    return result, Gaps(int(missing_steps.sum() + incomplete.size), int(gapped.size), empty)


def _spans(long: pd.DataFrame, complete: Any, runs: SeriesRuns) -> tuple[pd.DataFrame, SeriesRuns, list[str], Any]:
    """The rows of each series from its first complete row to its last, their runs, the
    series left without any, and for each incomplete row kept its series' number."""
    import numpy as np

    codes = runs.codes()
    rows = np.flatnonzero(complete)
    firsts = np.flatnonzero(np.r_[True, codes[rows][1:] != codes[rows][:-1]]) if rows.size else rows
    kept = codes[rows][firsts]  # the series with a complete row, by number
    first, last = rows[firsts], rows[np.r_[firsts[1:] - 1, rows.size - 1]] if rows.size else rows
    lengths = last - first + 1
    starts = np.cumsum(lengths) - lengths
    inside = np.arange(lengths.sum()) + np.repeat(first - starts, lengths)
    spans = SeriesRuns(runs.ids[kept], starts, lengths)
    empty = [str(uid) for uid in np.delete(runs.ids, kept)]
    return long.take(inside).reset_index(drop=True), spans, empty, spans.codes()[~complete[inside]]


def _missing_steps(spans: pd.DataFrame, runs: SeriesRuns, freq: str) -> Any:
    """Steps of the grid each series has no row for, between its first and last row."""
    import numpy as np
    import pandas as pd

    offset = offset_of(freq)
    stamps = spans["ds"].to_numpy("datetime64[ns]")
    if isinstance(offset, pd.offsets.Tick):
        # Fixed-length steps: the gap between two rows is a whole number of them.
        step = offset.nanos
        gaps = np.diff(stamps.view(np.int64))
        within = np.ones(len(gaps), dtype=bool)
        within[runs.starts[1:] - 1] = False  # from one series' last row to the next's first
        if ((gaps == step) | ~within).all():  # as most uploads are: no gaps (and no sums)
            return np.zeros(len(runs.starts), dtype=np.int64)
        bad = np.flatnonzero(within & ((gaps <= 0) | (gaps % step != 0)))
        if bad.size:
            _refuse(spans, bad[0] + 1, freq)
        steps = np.where(within, gaps // step - 1, 0)
        return np.bincount(runs.codes()[:-1], weights=steps, minlength=len(runs.starts)).astype(np.int64)
    # Calendar steps (months, weeks, business days) differ in length: each series' own grid.
    missing = np.zeros(len(runs.starts), dtype=np.int64)
    for i, (start, length) in enumerate(zip(runs.starts, runs.lengths, strict=True)):
        own = pd.DatetimeIndex(stamps[start : start + length])
        grid = pd.date_range(own[0], own[-1], freq=offset)
        if not own.is_unique or not own.isin(grid).all():
            _refuse(spans, start + int(np.flatnonzero(own.duplicated() | ~own.isin(grid))[0]), freq)
        missing[i] = len(grid) - length
    return missing


def _refuse(spans: pd.DataFrame, row: int, freq: str) -> None:
    uid, stamp = spans["unique_id"].iloc[row], spans["ds"].iloc[row]
    repeated = row > 0 and spans["unique_id"].iloc[row - 1] == uid and spans["ds"].iloc[row - 1] == stamp
    what = "two rows at" if repeated else f"a row off the '{freq}' grid (a whole number of steps from its first row) at"
    raise OffGrid(f"series {uid!r} has {what} {stamp}: make its timestamps regular before training")


def _filled_series(part: pd.DataFrame, freq: str, columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    grid = pd.date_range(part["ds"].iloc[0], part["ds"].iloc[-1], freq=offset_of(freq), name="ds")
    indexed = part.set_index("ds")
    full = indexed.reindex(grid)
    full["unique_id"] = part["unique_id"].iloc[0]
    full[columns] = full[columns].astype(float).interpolate(method="linear", limit_area="inside")
    if "held_out" in full.columns:
        # A filled step belongs to the part of the row before it (the test part is each series' end).
        full["held_out"] = indexed["held_out"].reindex(grid, method="ffill")
    return full.reset_index()[part.columns]
