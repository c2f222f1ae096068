"""A regressor's forecast from new observations is computed on arrays (recursion.py)
instead of by mlforecast's predict: it must be the library's forecast, bit for bit, for
every regressor and transform VUR fits, and the library must still answer whatever the
arrays do not replicate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vur.forecasting import engines, recursion
from vur.forecasting.algorithms import get_algorithm


def _history(freq: str, points: int) -> pd.DataFrame:
    """Three series of different levels and lengths that end at different times."""
    rng = np.random.default_rng(7)
    frames = []
    for uid, level, length in (("a", 10.0, points), ("b", 250.0, points - 9), ("c", -3.0, points - 2)):
        stamps = pd.date_range("2024-01-01", periods=length, freq=freq)
        cycle = np.sin(np.arange(length) * 2 * np.pi / 7)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": stamps, "y": level + 2 * cycle + np.arange(length) * 0.05 + rng.normal(0, 0.3, length)}))
    return pd.concat(frames, ignore_index=True)


def _library_and_arrays(forecaster, observed: pd.DataFrame, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    history = forecaster._extended(observed)
    library = forecaster.fitted.predict(horizon, new_df=history.frame()).rename(columns={"mean": "library"})
    arrays = forecaster._points(history, horizon).frame()
    return library, arrays


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost", "random_forest", "linear"])
@pytest.mark.parametrize(("difference", "scale", "calendar"), [("seasonal", True, True), ("first", False, True), ("none", True, False), ("none", False, False)])
def test_the_arrays_give_the_library_forecast_bit_for_bit(algorithm: str, difference: str, scale: bool, calendar: bool) -> None:
    history = _history("h", 200)
    entry = get_algorithm(algorithm)
    given = {"season_length": 7, "lags": 10, "seasonal_lags": 3, "difference": difference, "scale": scale, "calendar": calendar, "n_estimators": 20}
    params = entry.resolve({name: value for name, value in given.items() if name in entry.parameters})
    forecaster = engines.forecast(entry, params, history, 12, "h", []).forecaster
    assert recursion.replicated(forecaster.fitted)

    # New points for two series, and a series the model never saw.
    ends = history.groupby("unique_id")["ds"].max()
    observed = pd.concat(
        [
            pd.DataFrame({"unique_id": "a", "ds": pd.date_range(ends["a"] + pd.Timedelta(hours=1), periods=5, freq="h"), "y": [11.0, 12.5, 9.0, 10.2, 10.9]}),
            pd.DataFrame({"unique_id": "c", "ds": [ends["c"] + pd.Timedelta(hours=1)], "y": [-2.5]}),
            pd.DataFrame({"unique_id": "new", "ds": pd.date_range("2024-03-01", periods=40, freq="h"), "y": np.linspace(4, 6, 40)}),
        ],
        ignore_index=True,
    )
    library, arrays = _library_and_arrays(forecaster, observed, 12)
    assert list(arrays["unique_id"]) == list(library["unique_id"]) and (arrays["ds"].to_numpy() == library["ds"].to_numpy()).all()
    assert (arrays["mean"].to_numpy() == library["library"].to_numpy()).all(), (arrays["mean"] - library["library"]).abs().max()
    assert np.isfinite(arrays["mean"]).all() and arrays["mean"].nunique() > 12  # a real forecast, not one value repeated


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost", "random_forest", "linear"])
def test_a_series_shorter_than_the_longest_lag_reads_missing_lags_as_the_library_does(algorithm: str) -> None:
    """Its early lags are NaN: the trees read them as missing values, ridge refuses them."""
    history = _history("h", 200)
    entry = get_algorithm(algorithm)
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 7, "lags": 10, "seasonal_lags": 3, "difference": "none"}), history, 6, "h", []).forecaster
    newcomer = pd.DataFrame({"unique_id": "new", "ds": pd.date_range("2024-03-01", periods=15, freq="h"), "y": np.linspace(4, 6, 15)})
    if algorithm == "linear":
        for forecast in (lambda: forecaster.fitted.predict(6, new_df=forecaster._extended(newcomer).frame()), lambda: forecaster.predict(6, [], newcomer)):
            with pytest.raises(ValueError, match="Input X contains NaN"):
                forecast()
        return
    library, arrays = _library_and_arrays(forecaster, newcomer, 6)
    assert (arrays["mean"].to_numpy() == library["library"].to_numpy()).all()


@pytest.mark.parametrize(("freq", "step"), [("D", pd.Timedelta(days=1)), ("MS", pd.DateOffset(months=1)), ("W-SUN", pd.Timedelta(weeks=1))])
def test_calendar_features_follow_each_frequency(freq: str, step) -> None:
    history = _history(freq, 120)
    entry = get_algorithm("lightgbm")
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 7, "lags": 8, "seasonal_lags": 2, "n_estimators": 20}), history, 6, freq, []).forecaster
    last = history[history["unique_id"] == "b"]["ds"].max()
    observed = pd.DataFrame({"unique_id": ["b", "b"], "ds": [last + step, last + 2 * step], "y": [262.0, 259.5]})
    library, arrays = _library_and_arrays(forecaster, observed, 6)
    assert (arrays["ds"].to_numpy() == library["ds"].to_numpy()).all()
    assert (arrays["mean"].to_numpy() == library["library"].to_numpy()).all()


def test_a_series_shorter_than_the_differences_is_refused_before_forecasting() -> None:
    """The library would refuse it too, in its internal terms; a batch is checked so before its job runs."""
    history = _history("h", 200)
    entry = get_algorithm("lightgbm")
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 7, "difference": "seasonal", "n_estimators": 20}), history, 6, "h", []).forecaster
    needed = 7  # a season of differences
    newcomer = pd.DataFrame({"unique_id": "new", "ds": pd.date_range("2024-03-01", periods=needed, freq="h"), "y": np.arange(needed, dtype=float)})
    for forecast in (lambda: forecaster.check(6, newcomer.iloc[1:]), lambda: forecaster.predict(6, [], newcomer.iloc[1:])):
        with pytest.raises(ValueError, match=f"series \\['new'\\] have fewer than the {needed} points"):
            forecast()
    forecaster.check(6, newcomer)  # as many points as the differences span: the library forecasts it
    assert len(forecaster.predict(6, [], newcomer)) == 6


def test_a_model_fitted_with_exogenous_columns_is_left_to_the_library() -> None:
    history = _history("h", 120)
    driven = history.assign(x=np.random.default_rng(1).uniform(0, 4, len(history)))
    entry = get_algorithm("lightgbm")
    forecaster = engines.forecast(entry, entry.resolve({"season_length": 7, "lags": 10, "seasonal_lags": 2, "n_estimators": 20}), driven, 6, "h", []).forecaster
    assert forecaster.exogenous == ["x"] and not recursion.replicated(forecaster.fitted)
