"""Series put on their frequency's grid for training: steps without a row and missing
values in between filled linearly, edges without values left out, rows off the grid refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vur.forecasting import grid


def _long(rows: dict[str, list[tuple[str, float | None]]], **extra: list) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(uid, pd.Timestamp(stamp), np.nan if value is None else value) for uid, points in rows.items() for stamp, value in points],
        columns=["unique_id", "ds", "y"],
    )
    return frame.assign(**extra)


def test_a_frame_on_its_grid_comes_back_as_it_is() -> None:
    long = _long({"a": [("2026-01-01 00:00", 1), ("2026-01-01 01:00", 2)], "b": [("2026-01-01 05:00", 3)]})
    regular, gaps = grid.regularize(long, "h", ["y"])
    assert regular is long and gaps == grid.Gaps() and gaps.notes(["value"]) == []


def test_missing_steps_and_values_are_interpolated_and_edges_left_out() -> None:
    long = _long(
        {
            "a": [("2026-01-01 00:00", None), ("2026-01-01 01:00", 10), ("2026-01-01 04:00", 40), ("2026-01-01 05:00", None), ("2026-01-01 06:00", 60), ("2026-01-01 07:00", None)],
            "b": [("2026-01-01 00:00", 1), ("2026-01-01 01:00", 2)],
            "c": [("2026-01-01 00:00", None)],
        }
    )
    regular, gaps = grid.regularize(long, "h", ["y"])
    a = regular[regular["unique_id"] == "a"]
    assert a["ds"].dt.hour.tolist() == [1, 2, 3, 4, 5, 6]
    assert a["y"].tolist() == pytest.approx([10, 20, 30, 40, 50, 60])
    assert regular[regular["unique_id"] == "b"]["y"].tolist() == [1, 2]
    assert regular["unique_id"].tolist() == ["a"] * 6 + ["b"] * 2 and isinstance(regular.index, pd.RangeIndex)
    # Two steps without a row (02:00, 03:00) and one without a value (05:00), in one series.
    assert gaps == grid.Gaps(filled=3, series_filled=1, empty=["c"])
    notes = gaps.notes(["value"])
    assert "3 missing point(s) inside 1 series" in notes[0] and "1 series have no complete row" in notes[1] and "'c'" in notes[1]


def test_exogenous_values_and_the_test_mark_are_filled_too() -> None:
    long = _long({"a": [("2026-01-01 00:00", 0), ("2026-01-01 01:00", 1), ("2026-01-01 03:00", 3), ("2026-01-01 04:00", 4)]}, x=[0.0, np.nan, 30.0, 40.0], held_out=[False, False, True, True])
    regular, gaps = grid.regularize(long, "h", ["y", "x"])
    # 01:00 lacks x and 02:00 a row: both filled, x along its line, y too.
    assert regular["y"].tolist() == pytest.approx([0, 1, 2, 3, 4]) and regular["x"].tolist() == pytest.approx([0, 10, 20, 30, 40])
    assert regular["held_out"].tolist() == [False, False, False, True, True] and list(regular.columns) == ["unique_id", "ds", "y", "x", "held_out"]
    assert gaps.filled == 2


def test_calendar_steps_follow_the_calendar() -> None:
    long = _long({"a": [("2026-01-01", 1), ("2026-02-01", 2), ("2026-05-01", 5)]})
    regular, gaps = grid.regularize(long, "MS", ["y"])
    assert regular["ds"].dt.month.tolist() == [1, 2, 3, 4, 5] and regular["y"].tolist() == pytest.approx([1, 2, 3, 4, 5])
    assert gaps.filled == 2


@pytest.mark.parametrize(
    ("points", "freq", "said"),
    [
        ([("2026-01-01 00:00", 1), ("2026-01-01 00:30", 2)], "h", "off the 'h' grid"),
        ([("2026-01-01 00:00", 1), ("2026-01-01 01:00", 2), ("2026-01-01 01:00", 3)], "h", "two rows at 2026-01-01 01:00"),
        ([("2026-01-01", 1), ("2026-02-15", 2)], "MS", "off the 'MS' grid"),
        ([("2026-01-01", 1), ("2026-01-01", 2)], "MS", "two rows"),
    ],
)
def test_rows_off_the_grid_are_refused(points: list, freq: str, said: str) -> None:
    long = _long({"a": [("2026-01-01 00:00", 1)], "b": points})
    with pytest.raises(grid.OffGrid, match=said) as refused:
        grid.regularize(long, freq, ["y"])
    assert "series 'b'" in str(refused.value)
