"""What a training job stores as records (the forecast's points, forecast against
actual) is built column-wise; each record is what the row itself would give."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vur.forecasting import training
from vur.forecasting.engines import POINT


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2026-03-29 00:00", periods=6, freq="30min", tz="Europe/Paris")
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(["s1", "s2"], 6),
            "ds": np.tile(stamps, 2) + pd.Timedelta(nanoseconds=1),
            POINT: rng.normal(size=12).astype(np.float32),  # a network's output
            "y": rng.normal(size=12),
            **{f"{side}-{level}": rng.normal(size=12) for level in (80, 95) for side in ("lo", "hi")},
        }
    )
    frame.loc[4, POINT] = np.nan
    return frame


def test_forecast_points_are_the_rows_values() -> None:
    frame = _frame()
    for levels in ([80, 95], []):
        expected = [
            {
                "series_id": str(row["unique_id"]),
                "timestamp": row["ds"].isoformat(),
                "value": float(row[POINT]),
                "lower": {str(level): float(row[f"lo-{level}"]) for level in levels},
                "upper": {str(level): float(row[f"hi-{level}"]) for level in levels},
            }
            for row in frame.to_dict("records")
        ]
        assert repr(training._forecast_points(frame, levels)) == repr(expected)


def test_forecast_against_actual_is_the_rows_values() -> None:
    frame = _frame()
    expected = [
        {"series_id": r["unique_id"], "timestamp": r["ds"].isoformat(), "actual": float(r["y"]), "forecast": float(r[POINT]), "residual": float(r["y"] - r[POINT])}
        for r in frame.to_dict("records")
    ]
    assert repr(training._against_actual(frame)) == repr(expected)
