"""Every algorithm of the catalogue against the same contract: its parameter schema is
enforced, and with its defaults it fits an hourly series and forecasts the horizon
with intervals that contain the point forecast. Then what the lag-feature regressors
and `auto` add: global models over series of different scales, and a portfolio
chosen per series by backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vur.forecasting import engines
from vur.forecasting.algorithms import CATALOGUE, catalogue_by_family, get_algorithm, lag_list
from vur.forecasting.exceptions import InvalidHyperparameters, UnknownAlgorithm

HORIZON = 24


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    hours = np.arange(24 * 14)
    values = 50 + 10 * np.sin(2 * np.pi * hours / 24) + 0.05 * hours + rng.normal(0, 1, hours.size)
    return pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=hours.size, freq="h"), "y": values})


LISTED = sorted(a.id for a in CATALOGUE.values() if a.listed)


@pytest.mark.parametrize("algorithm_id", LISTED)
def test_fits_and_forecasts_with_its_defaults(algorithm_id: str, hourly: pd.DataFrame) -> None:
    algorithm = get_algorithm(algorithm_id)
    params = algorithm.resolve({})
    forecast = engines.forecast(algorithm, params, hourly, HORIZON, "h", [80]).frame
    assert list(forecast.columns) == ["unique_id", "ds", "mean", "lo-80", "hi-80"]
    assert len(forecast) == HORIZON
    assert forecast["ds"].iloc[0] == hourly["ds"].iloc[-1] + pd.Timedelta(hours=1)
    mean, low, high = (forecast[c].to_numpy() for c in ("mean", "lo-80", "hi-80"))
    assert np.isfinite(mean).all() and (low <= mean + 1e-9).all() and (mean <= high + 1e-9).all()
    # Every model here should land near a series that stays within 30..80.
    assert 20 < float(np.mean(mean)) < 90


def _bad_values(schema: dict) -> list:
    if schema["type"] == "int":
        return [schema["min"] - 1, schema["max"] + 1, 1.5, "3", True]
    if schema["type"] == "bool":
        return ["yes", 1]
    if schema["type"] == "choice":
        return ["nope", None]
    return ["x", schema["min"] - 1, schema["max"] * 2, True]


@pytest.mark.parametrize("algorithm_id", LISTED)
def test_every_parameter_is_checked_against_its_schema(algorithm_id: str) -> None:
    algorithm = get_algorithm(algorithm_id)
    for name, schema in algorithm.to_schema()["parameters"].items():
        assert algorithm.resolve({name: schema["default"]})[name] == schema["default"]
        for bad in _bad_values(schema):
            with pytest.raises(InvalidHyperparameters) as refused:
                algorithm.resolve({name: bad})
            assert name in refused.value.details, (name, bad)
    with pytest.raises(InvalidHyperparameters) as unknown:
        algorithm.resolve({"not_a_parameter": 1})
    assert unknown.value.details == {"not_a_parameter": "unknown parameter"}


def test_ets_rules_that_span_parameters() -> None:
    ets = get_algorithm("ets")
    with pytest.raises(InvalidHyperparameters) as damped:
        ets.resolve({"trend": "N", "damped": True})
    assert "damped" in damped.value.details
    with pytest.raises(InvalidHyperparameters) as season:
        ets.resolve({"seasonality": "A", "season_length": 1})
    assert "season_length" in season.value.details
    assert ets.resolve({"trend": "A", "damped": True, "seasonality": "N", "season_length": 1})["damped"] is True


def test_catalogue_groups_and_unknown_ids() -> None:
    grouped = catalogue_by_family()
    assert {"naive", "seasonal_naive", "arima", "sarima", "auto_arima", "ets", "auto_ets", "theta", "mstl", "prophet"} <= {a["id"] for a in grouped["classical"]}
    assert {a["id"] for a in grouped["machine_learning"]} == {"lightgbm", "xgboost", "random_forest", "linear", "auto"}
    with pytest.raises(UnknownAlgorithm):
        get_algorithm("prophetic")


def test_lags_and_the_history_they_need() -> None:
    lightgbm = get_algorithm("lightgbm")
    params = lightgbm.resolve({"season_length": 24, "lags": 3, "seasonal_lags": 3})
    assert lag_list(params) == [1, 2, 3, 48, 72]
    # The longest lag, one season to undo the seasonal difference, a season to learn from.
    assert lightgbm.min_history(params, 24) == 72 + 24 + 24 + 1
    assert lag_list(lightgbm.resolve({"season_length": 1, "lags": 2, "seasonal_lags": 5})) == [1, 2]
    assert engines.calendar_features("h") == ["hour", "dayofweek"] and engines.calendar_features("MS") == ["month"]


def _series_of_different_scales(hours: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    steps = np.arange(hours)
    frames = [
        pd.DataFrame({"unique_id": name, "ds": pd.date_range("2026-01-01", periods=hours, freq="h"), "y": level * (1 + 0.2 * np.sin(2 * np.pi * steps / 24)) + rng.normal(0, level * 0.01, hours)})
        for name, level in (("small", 10.0), ("large", 10_000.0))
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("algorithm_id", ["lightgbm", "xgboost", "random_forest", "linear"])
def test_one_regressor_forecasts_series_of_any_scale_in_their_own_units(algorithm_id: str) -> None:
    data = _series_of_different_scales(24 * 14)
    algorithm = get_algorithm(algorithm_id)
    forecast = engines.forecast(algorithm, algorithm.resolve({}), data, HORIZON, "h", [90]).frame
    for name, level in (("small", 10.0), ("large", 10_000.0)):
        part = forecast[forecast["unique_id"] == name]
        assert len(part) == HORIZON
        expected = level * (1 + 0.2 * np.sin(2 * np.pi * np.arange(24 * 14, 24 * 15) / 24))
        # Within 5% of the series' own level: a model mixing up scales would be far off.
        assert np.mean(np.abs(part["mean"].to_numpy() - expected)) < 0.05 * level
        assert (part["lo-90"] <= part["mean"] + 1e-9).all() and (part["mean"] <= part["hi-90"] + 1e-9).all()


@pytest.mark.parametrize("algorithm_id", sorted(a.id for a in CATALOGUE.values() if a.engine == "statsforecast"))
def test_a_forecast_that_keeps_no_model_is_the_same_forecast(algorithm_id: str) -> None:
    # Backtests keep no model: statsforecast forecasts without storing the fitted ones.
    data = _series_of_different_scales(24 * 14)
    algorithm = get_algorithm(algorithm_id)
    params = algorithm.resolve({})
    kept = engines.forecast(algorithm, params, data, HORIZON, "h", [80])
    alone = engines.forecast(algorithm, params, data, HORIZON, "h", [80], keep_model=False)
    assert alone.forecaster is None and kept.forecaster is not None
    pd.testing.assert_frame_equal(alone.frame, kept.frame)


def test_naive_scale_is_each_series_in_sample_seasonal_naive_error() -> None:
    data = _series_of_different_scales(24 * 3)
    data.loc[5, "y"] = np.nan
    flat = pd.DataFrame({"unique_id": "flat", "ds": data["ds"].iloc[:30], "y": 4.0})
    short = pd.DataFrame({"unique_id": "short", "ds": data["ds"].iloc[:10], "y": np.arange(10.0)})
    train = pd.concat([flat, data, short], ignore_index=True)
    by_series = train.groupby("unique_id", sort=False)["y"]
    expected = (train["y"] - by_series.shift(24)).abs().groupby(train["unique_id"], sort=False).mean()
    scale = engines.naive_scale(train, 24)
    assert list(scale.index) == ["flat", "small", "large", "short"]
    # A flat series (no error) and one shorter than a season have no scale.
    assert scale[["flat", "short"]].isna().all()
    pd.testing.assert_series_equal(scale[["large", "small"]], expected[["large", "small"]], check_names=False, rtol=1e-12)


def test_same_seed_same_forecast() -> None:
    data = _series_of_different_scales(24 * 12)
    forest = get_algorithm("random_forest")
    first, second = (engines.forecast(forest, forest.resolve({"seed": 5}), data, HORIZON, "h", []).frame for _ in range(2))
    pd.testing.assert_frame_equal(first, second)


def test_auto_backtests_its_portfolio_and_chooses_per_series() -> None:
    data = _series_of_different_scales(24 * 14)
    auto = get_algorithm("auto")
    result = engines.forecast(auto, auto.resolve({"ensemble_size": 2}), data, HORIZON, "h", [80])
    details = result.details
    assert {"seasonal_naive", "mstl", "lightgbm_seasonal_difference", "lightgbm_level", "xgboost_seasonal_difference"} == set(details["candidates"])
    # Two weeks of hourly data: the weekly cycle does not show twice before the backtest windows.
    assert details["candidates"]["mstl"]["hyperparameters"] == {"season_length": 24, "second_season": 0}
    assert sum(details["chosen_for_series"].values()) == 2 * 2
    assert all(np.isfinite(v) for v in details["validation_score"].values())
    assert len(result.frame) == 2 * HORIZON and {"lo-80", "hi-80"} <= set(result.frame.columns)
    # A clean daily cycle: whatever it chose lands close.
    small = result.frame[result.frame["unique_id"] == "small"]["mean"].to_numpy()
    assert np.mean(np.abs(small - 10 * (1 + 0.2 * np.sin(2 * np.pi * np.arange(24 * 14, 24 * 15) / 24)))) < 0.5


def test_auto_falls_back_to_what_short_series_allow() -> None:
    assert set(engines.portfolio({"season_length": 0, "cv_windows": 2}, "h", 24 * 2 + 20, 24)) == {"naive"}
    assert set(engines.portfolio({"season_length": 0, "cv_windows": 2}, "h", 24 * 5, 24)) == {"seasonal_naive", "mstl"}
