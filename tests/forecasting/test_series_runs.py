"""The series of a frame in the statsforecast layout found by where the id changes,
however the ids are held, and what the training job derives from them instead of
finding them again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vur.forecasting import engines, training
from vur.forecasting.forecasters import SeriesRuns

LENGTHS = [3, 1, 4, 2]


def _frame(ids: list) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": ids, "ds": pd.date_range("2026-01-01", periods=len(ids), freq="h"), "y": np.arange(len(ids), dtype=float)})


def _runs_by_grouping(frame: pd.DataFrame) -> tuple[list, list, list]:
    sizes = frame.groupby("unique_id", sort=False).size()
    return list(sizes.index), list(np.cumsum(sizes) - sizes), list(sizes)


@pytest.mark.parametrize(
    "ids",
    [
        [uid for uid, n in zip("bazc", LENGTHS, strict=True) for _ in range(n)],  # a series' rows share one string
        [uid + str(1) for uid, n in zip("bazc", LENGTHS, strict=True) for _ in range(n)],  # each row its own string
        [n * 10 for n in LENGTHS for _ in range(n)],  # numbers
        ["a"],
        [],
    ],
    ids=["shared strings", "a string per row", "numbers", "one row", "empty"],
)
def test_runs_are_the_series_however_the_ids_are_held(ids: list) -> None:
    frame = _frame(ids)
    runs = SeriesRuns.of(frame)
    assert (list(runs.ids), list(runs.starts), list(runs.lengths)) == _runs_by_grouping(frame)


def test_equal_ids_held_by_different_objects_are_one_series() -> None:
    # Two strings equal in value, one object each: where the objects change, the text decides.
    first, second = "".join(["s", "1"]), "".join(["s", "1"])
    assert first == second and first is not second
    runs = SeriesRuns.of(_frame(np.array([first, first, second, "s2", "s2"], dtype=object)))
    assert (list(runs.ids), list(runs.starts), list(runs.lengths)) == (["s1", "s2"], [0, 3], [3, 2])


@pytest.mark.parametrize("counts", [[3, 1, 4, 2], [2, 0, 1, 2], [-1, 5, 4, 0], [0, 0, 0, 0]])
def test_the_runs_of_each_series_first_rows_are_derived_without_finding_them(counts: list[int]) -> None:
    frame = _frame([uid for uid, n in zip("bazc", LENGTHS, strict=True) for _ in range(n)])
    runs = SeriesRuns.of(frame)
    kept = frame[runs.positions(runs.codes()) < np.repeat(counts, LENGTHS)]
    derived, found = runs.first(np.array(counts)), SeriesRuns.of(kept)
    for name in ("ids", "starts", "lengths"):
        np.testing.assert_array_equal(getattr(derived, name), getattr(found, name))


def test_naive_scale_with_given_runs_is_the_same() -> None:
    frame = _frame([uid for uid, n in zip("bazc", [30, 2, 40, 25], strict=True) for _ in range(n)])
    frame["y"] = np.random.default_rng(0).normal(size=len(frame))
    frame.loc[7, "y"] = np.nan
    pd.testing.assert_series_equal(engines.naive_scale(frame, 24, SeriesRuns.of(frame)), engines.naive_scale(frame, 24))


def test_rows_are_pandas_rows_on_a_fresh_index_with_their_types() -> None:
    frame = _frame(["a", "a", "b", "b", "b"]).assign(ds=lambda f: f["ds"].dt.tz_localize("Europe/Lisbon"), x=pd.array([1, None, 3, 4, 5], dtype="Int64"))
    mask = np.array([True, False, True, False, True])
    pd.testing.assert_frame_equal(training._rows(frame, mask), frame[mask].reset_index(drop=True))
