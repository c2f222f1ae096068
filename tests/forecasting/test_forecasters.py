"""Fitted forecasters survive pickling and forecast again: from the end of their
history exactly as at fit time, and from newer observations with the fitted model."""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from vur.forecasting import engines, forecasters
from vur.forecasting.algorithms import get_algorithm
from vur.forecasting.forecasters import InvalidFutureValues, UnknownSeriesError, original_units, training_units

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    hours = 300
    stamps = pd.date_range("2026-01-01", periods=hours, freq="h")
    noise = np.random.default_rng(0).normal(0, 0.1, hours)
    return pd.concat(
        [pd.DataFrame({"unique_id": uid, "ds": stamps, "y": level + np.sin(np.arange(hours) * 2 * np.pi / 24) + noise}) for uid, level in (("a", 10), ("b", 20))],
        ignore_index=True,
    )


@pytest.mark.parametrize(
    ("algorithm", "given"),
    [("arima", {}), ("historic_average", {}), ("lightgbm", {}), ("auto", {}), ("mlp", {"epochs": 2, "units": 8}), ("prophet", {})],
)
def test_a_pickled_forecaster_forecasts_again(history: pd.DataFrame, algorithm: str, given: dict) -> None:
    entry = get_algorithm(algorithm)
    fitted = engines.forecast(entry, entry.resolve(given), history, 12, "h", [80])
    forecaster = pickle.loads(pickle.dumps(fitted.forecaster))
    assert forecaster.horizon == 12 and forecaster.levels == [80]
    pd.testing.assert_frame_equal(forecaster.history, fitted.forecaster.history)

    again = forecaster.predict(5, [80])
    expected = fitted.frame.groupby("unique_id").head(5).reset_index(drop=True)
    pd.testing.assert_frame_equal(again, expected[again.columns])

    newest = history["ds"].max()
    observed = pd.DataFrame({"unique_id": ["a", "a"], "ds": [newest + pd.Timedelta(hours=1), newest + pd.Timedelta(hours=2)], "y": [10.4, 10.9]})
    moved = forecaster.predict(4, [80], observed)
    assert list(moved["unique_id"]) == ["a"] * 4
    assert moved["ds"].iloc[0] == newest + pd.Timedelta(hours=3)
    assert (moved["lo-80"] <= moved["mean"]).all() and (moved["mean"] <= moved["hi-80"]).all()
    assert np.isfinite(moved["mean"]).all()


def test_a_forecaster_pickled_with_its_whole_history_still_loads(history: pd.DataFrame) -> None:
    entry = get_algorithm("naive")
    fitted = engines.forecast(entry, entry.resolve({}), history, 6, "h", []).forecaster
    before = object.__new__(type(fitted))
    before.__setstate__(dict(fitted.__dict__))  # the state as pickled before the ids were kept per series
    pd.testing.assert_frame_equal(before.history, fitted.history)
    pd.testing.assert_frame_equal(before.predict(3, []), fitted.predict(3, []))


def test_a_model_per_series_refuses_a_series_it_never_saw(history: pd.DataFrame) -> None:
    entry = get_algorithm("naive")
    forecaster = engines.forecast(entry, entry.resolve({}), history, 6, "h", []).forecaster
    stranger = pd.DataFrame({"unique_id": ["z"], "ds": [history["ds"].max()], "y": [1.0]})
    with pytest.raises(UnknownSeriesError):
        forecaster.predict(3, [], stranger)


def test_a_global_regressor_forecasts_a_new_series_from_its_history(history: pd.DataFrame) -> None:
    entry = get_algorithm("lightgbm")
    forecaster = engines.forecast(entry, entry.resolve({}), history, 6, "h", [80]).forecaster
    newcomer = history[history["unique_id"] == "b"].assign(unique_id="c")
    frame = forecaster.predict(6, [80], newcomer)
    assert list(frame["unique_id"].unique()) == ["c"] and frame[["lo-80", "hi-80"]].notna().all().all()


def test_a_pickled_regressor_keeps_its_exogenous_columns(history: pd.DataFrame) -> None:
    driven = history.assign(x=np.random.default_rng(1).uniform(0, 4, len(history)))
    driven["y"] += 3 * driven["x"]
    entry = get_algorithm("linear")
    fitted = engines.forecast(entry, entry.resolve({"difference": "none"}), driven, 6, "h", [80])
    assert fitted.frame.empty and fitted.details["exogenous"] == ["x"]  # nothing to forecast from beyond the data
    forecaster = pickle.loads(pickle.dumps(fitted.forecaster))
    assert forecaster.exogenous == ["x"] and forecaster.horizon == 6 and forecaster.levels == [80]

    ahead = pd.date_range(history["ds"].max() + pd.Timedelta(hours=1), periods=6, freq="h")
    future = pd.DataFrame({"unique_id": "a", "ds": ahead, "x": [0.0, 4.0, 0.0, 4.0, 0.0, 4.0]})
    frame = forecaster.predict(6, [80], None, future)
    pd.testing.assert_frame_equal(frame, fitted.forecaster.predict(6, [80], None, future))
    assert list(frame["unique_id"].unique()) == ["a"] and (frame["lo-80"] < frame["mean"]).all()
    assert (frame["mean"].diff().iloc[1:].abs() > 8).all()  # each step follows x (3 x 4 apart), not the last value
    with pytest.raises(InvalidFutureValues, match="no value of 'x' for series 'a'"):
        forecaster.predict(6, [], None, future.iloc[:5])
    with pytest.raises(InvalidFutureValues, match="future values of"):
        forecaster.predict(6, [])

    # One pickled before exogenous columns existed reads as a model without them.
    plain = engines.forecast(entry, entry.resolve({}), history, 6, "h", []).forecaster
    del plain.__dict__["exogenous"]
    assert pickle.loads(pickle.dumps(plain)).predict(3, []).shape == (6, 3)


def test_unit_conversions_are_inverse() -> None:
    config = {"target_restoration": [{"scale": 2.0, "center": 1.0}, {"scale": 10.0, "center": -3.0}]}
    values = pd.Series([0.0, 1.5, -2.0])
    frame = pd.DataFrame({"y": training_units(config["target_restoration"])(values)})
    assert original_units(config)(frame)["y"].tolist() == pytest.approx(values.tolist())


def test_new_observations_extend_the_kept_history_as_grouping_would(monkeypatch: pytest.MonkeyPatch, history: pd.DataFrame) -> None:
    """The integer-coded extension gives what drop_duplicates, sort_values and
    groupby().tail() give: an observation at a kept timestamp replaces that point (the
    later of two given for one timestamp wins), each series keeps its latest points."""
    monkeypatch.setattr(forecasters, "HISTORY_KEPT", 50)
    entry = get_algorithm("naive")
    forecaster = engines.forecast(entry, entry.resolve({}), history, 6, "h", []).forecaster
    newest = history["ds"].max()
    observed = pd.DataFrame(
        {
            "unique_id": ["b", "a", "b", "a", "a"],
            "ds": [newest + pd.Timedelta(hours=2), newest - pd.Timedelta(hours=3), newest + pd.Timedelta(hours=1), newest - pd.Timedelta(hours=3), newest + pd.Timedelta(hours=1)],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    expected = pd.concat([forecaster.history, observed], ignore_index=True).drop_duplicates(["unique_id", "ds"], keep="last").sort_values(["unique_id", "ds"], kind="stable")
    expected = expected.groupby("unique_id", sort=False).tail(50).reset_index(drop=True)
    pd.testing.assert_frame_equal(forecaster._extended(observed).frame(), expected)
    assert len(forecaster.history) == 100  # kept at fit time: each series' latest 50, in order
    pd.testing.assert_frame_equal(forecaster.history, history.groupby("unique_id").tail(50).reset_index(drop=True))


def test_integer_series_ids_extend_their_history_and_are_named_as_given(history: pd.DataFrame) -> None:
    """Series ids of a numeric column code the observations as strings do; a series the
    model never saw is named as the request names it, not as numpy prints its scalars."""
    numbered = history.assign(unique_id=history["unique_id"].map({"a": 1, "b": 2}))
    entry = get_algorithm("naive")
    forecaster = engines.forecast(entry, entry.resolve({}), numbered, 6, "h", []).forecaster
    newest = numbered["ds"].max()
    observed = pd.DataFrame({"unique_id": [2, 1], "ds": [newest + pd.Timedelta(hours=1)] * 2, "y": [5.0, 7.0]})
    expected = pd.concat([forecaster.history, observed], ignore_index=True).sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(forecaster._extended(observed).frame(), expected)
    with pytest.raises(UnknownSeriesError, match=re.escape("series [9]")):
        forecaster.predict(3, [], observed.assign(unique_id=9))


def test_a_forecast_as_columns_is_the_forecast_frame(history: pd.DataFrame) -> None:
    """The prediction service gives observations and reads the forecast as arrays: the
    same answer as the frame. The history's arrays taken out for it are not pickled (the
    history is, once)."""
    entry = get_algorithm("seasonal_naive")
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 24}), history, 6, "h", [80]).forecaster
    newest = history["ds"].max()
    observed = pd.DataFrame({"unique_id": ["b", "a", "b"], "ds": [newest + pd.Timedelta(hours=h) for h in (1, 1, 2)], "y": [20.5, 10.4, 20.1]})
    columns = forecaster.forecast_columns(6, [80], {name: observed[name].to_numpy() for name in observed.columns})
    pd.testing.assert_frame_equal(pd.DataFrame(columns), forecaster.predict(6, [80], observed))
    assert "_columns" in forecaster.__dict__ and "_columns" not in pickle.loads(pickle.dumps(forecaster)).__dict__


@pytest.mark.parametrize(
    ("hours", "named"),
    [
        ([1, 3], "2026-01-13T14:00:00 follows 2026-01-13T12:00:00"),  # a step left out
        ([1.5], "2026-01-13T12:30:00 follows 2026-01-13T11:00:00, where the model's frequency (h) has 2026-01-13T12:00:00 next"),  # off the hourly grid
        ([-400], "2026-01-01T00:00:00 follows 2025-12-27T19:00:00"),  # before the kept history, with a gap to it
    ],
)
def test_observations_must_continue_the_series_step_by_step(history: pd.DataFrame, hours: list[float], named: str) -> None:
    """A fitted model reads each value as the step after the previous one: a gap or a
    time off the grid is refused, naming the point, not forecast from silently."""
    entry = get_algorithm("seasonal_naive")
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 24}), history, 6, "h", [80]).forecaster
    newest = history["ds"].max()
    observed = pd.DataFrame({"unique_id": "a", "ds": [newest + pd.Timedelta(hours=h) for h in hours], "y": 10.0})
    with pytest.raises(ValueError, match=re.escape(named)):
        forecaster.predict(3, [80], observed)
    # Continuing it, or correcting a point it holds, is fine.
    assert len(forecaster.predict(3, [80], observed.assign(ds=[newest + pd.Timedelta(hours=i + 1) for i in range(len(hours))]))) == 3
    assert len(forecaster.predict(3, [80], observed.assign(ds=newest - pd.Timedelta(hours=5)).head(1))) == 3


def test_forecast_dates_follow_each_series_own_end() -> None:
    """Series that end at different times (some together) each get the dates after their end."""
    ends = {"x": "2026-01-31", "y": "2026-03-31", "z": "2026-01-31"}
    history = pd.DataFrame({"unique_id": list(ends), "ds": pd.to_datetime(list(ends.values())), "y": 1.0})
    steps = forecasters._steps_ahead(history, 3, "ME")
    expected = pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(end, periods=4, freq="ME")[1:]}) for uid, end in ends.items()], ignore_index=True)
    pd.testing.assert_frame_equal(steps, expected)


def test_a_statistical_model_is_applied_to_new_observations_without_refitting(history: pd.DataFrame) -> None:
    """Theta inherits AutoTheta's `forward`: its fitted parameters carry over to the
    extended history; only a model without one is fitted again."""
    entry = get_algorithm("theta")
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 24}), history, 6, "h", []).forecaster
    observed = pd.DataFrame({"unique_id": ["a"], "ds": [history["ds"].max() + pd.Timedelta(hours=1)], "y": [10.5]})
    model = forecaster.models["a"]
    expected = model.forward(y=np.append(history.loc[history["unique_id"] == "a", "y"].to_numpy(), 10.5), h=6)["mean"]
    model.forecast = None  # refitting would fail
    np.testing.assert_allclose(forecaster.predict(6, [], observed)["mean"].to_numpy(), expected)
