"""Every algorithm of the catalogue against the same contract: its parameter schema is
enforced, and with its defaults it fits an hourly series and forecasts the horizon
with intervals that contain the point forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vur.forecasting.algorithms import CATALOGUE, catalogue_by_family, get_algorithm
from vur.forecasting.exceptions import InvalidHyperparameters, UnknownAlgorithm

HORIZON = 24


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    hours = np.arange(24 * 14)
    values = 50 + 10 * np.sin(2 * np.pi * hours / 24) + 0.05 * hours + rng.normal(0, 1, hours.size)
    return pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2026-01-01", periods=hours.size, freq="h"), "y": values})


@pytest.mark.parametrize("algorithm_id", sorted(CATALOGUE))
def test_fits_and_forecasts_with_its_defaults(algorithm_id: str, hourly: pd.DataFrame) -> None:
    from statsforecast import StatsForecast

    algorithm = get_algorithm(algorithm_id)
    params = algorithm.resolve({})
    forecast = StatsForecast(models=[algorithm.build(params)], freq="h", n_jobs=1).forecast(df=hourly, h=HORIZON, level=[80])
    alias = next(c for c in forecast.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c)
    assert len(forecast) == HORIZON
    assert forecast["ds"].iloc[0] == hourly["ds"].iloc[-1] + pd.Timedelta(hours=1)
    mean, low, high = (forecast[c].to_numpy() for c in (alias, f"{alias}-lo-80", f"{alias}-hi-80"))
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
    return ["x"]


@pytest.mark.parametrize("algorithm_id", sorted(CATALOGUE))
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
    assert {a["id"] for a in grouped["classical"]} == set(CATALOGUE)
    assert grouped["machine_learning"] == [] and grouped["deep_learning"] == []
    with pytest.raises(UnknownAlgorithm):
        get_algorithm("prophetic")
