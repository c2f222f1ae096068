"""What a training job stores: the forecast's points and forecast against actual, column
by column, read back as records each what the row itself would give (and records stored
by earlier versions as they are); JSON that reads back as the
standard library's would; files written on a thread, all there when the job goes on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vur.core.storage import LocalArtifactStore
from vur.forecasting import training
from vur.forecasting.engines import POINT
from vur.forecasting.service import point_records


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
        stored = json.loads(training._json(training._forecast_columns(frame, levels)))
        assert repr(point_records(stored)) == repr(json.loads(json.dumps(expected)))
        assert point_records(expected) is expected


def test_forecast_against_actual_is_the_rows_values() -> None:
    frame = _frame()
    expected = [
        {"series_id": r["unique_id"], "timestamp": r["ds"].isoformat(), "actual": float(r["y"]), "forecast": float(r[POINT]), "residual": float(r["y"] - r[POINT])}
        for r in frame.to_dict("records")
    ]
    assert repr(point_records(json.loads(training._json(training._against_actual(frame))))) == repr(json.loads(json.dumps(expected)))


def test_stored_json_reads_back_as_the_values_json_writes() -> None:
    record = {"series_id": "Zürich 1", "value": 0.1 + 0.2, "tiny": 5e-324, "missing": float("nan"), "infinite": float("inf"), "levels": [80, 95], "none": None}
    assert repr(json.loads(training._json(record))) == repr(json.loads(json.dumps(record)))


def test_files_kept_on_the_writing_thread_are_written_when_the_block_ends(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with training._writing(store, "models/m/versions/v1") as keep:
        keep("model.pkl", b"1" * 5_000_000)
        keep("results.json", b"{}")
    assert store.size("models/m/versions/v1/model.pkl") == 5_000_000 and store.exists("models/m/versions/v1/results.json")
    # A failure inside the block surfaces once the writes already started are done, so
    # the job's clean-up finds every file of the version to delete.
    with pytest.raises(RuntimeError), training._writing(store, "models/m/versions/v2") as keep:
        keep("model.pkl", b"1" * 5_000_000)
        raise RuntimeError("failed after the fit")
    assert store.size("models/m/versions/v2/model.pkl") == 5_000_000
