"""Forecasting engines: one call that fits a catalogue algorithm on a long frame and
forecasts it, whichever library does the work.

Every engine takes `data` in statsforecast's layout (unique_id, ds, y; sorted) and
answers a frame with unique_id, ds, `mean` and `lo-L` / `hi-L` for each requested
level. The lag-feature regressors also read any further column of `data` as an
exogenous regressor, whose values over the horizon `future` gives. Model libraries are
imported inside the functions: this runs in job processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vur.forecasting.algorithms import CUSTOM_NETWORK, Algorithm, get_algorithm, lag_list
from vur.forecasting.forecasters import (
    POINT,
    EnsembleForecaster,
    Forecaster,
    NetworkForecaster,
    ProphetForecaster,
    RegressionForecaster,
    SeriesRuns,
    StatisticalForecaster,
    held_future,
)

if TYPE_CHECKING:
    import pandas as pd

    from vur.forecasting.networks import EpochCallback

# Conformal prediction intervals for the regressors come from this many extra
# backtest windows, so they need that much more history.
INTERVAL_WINDOWS = 2


@dataclass
class Forecast:
    frame: pd.DataFrame
    # What the engine decided on the way (auto: the candidates' scores and choices).
    details: dict[str, Any] = field(default_factory=dict)
    # The fitted model, able to forecast again (see forecasters.py).
    forecaster: Forecaster | None = None


def forecast(
    algorithm: Algorithm,
    params: dict[str, Any],
    data: pd.DataFrame,
    horizon: int,
    freq: str,
    levels: list[int],
    on_epoch: EpochCallback | None = None,
    future: pd.DataFrame | None = None,
    keep_model: bool = True,
    runs: SeriesRuns | None = None,
) -> Forecast:
    """`on_epoch(epoch, epochs, logs)` follows a network's training; other engines have no epochs.
    `future`: the exogenous columns' values over the horizon (see `_regression`).
    `keep_model=False` when only the forecast is read (a backtest window): no forecaster is built.
    `runs`: the series of `data`, when the caller has them (found again otherwise)."""
    if algorithm.engine == "keras":
        return _network(algorithm, params, data, horizon, freq, levels, keep_model, on_epoch)
    if algorithm.engine == "mlforecast":
        return _regression(algorithm, params, data, horizon, freq, levels, keep_model, future)
    if algorithm.engine == "statsforecast":
        return _statistical(algorithm, params, data, horizon, freq, levels, keep_model, runs)
    engine = {"prophet": _prophet, "auto": _auto}[algorithm.engine]
    return engine(algorithm, params, data, horizon, freq, levels, keep_model)


def _network(algorithm: Algorithm, params: dict[str, Any], data: pd.DataFrame, horizon: int, freq: str, levels: list[int], keep_model: bool, on_epoch: EpochCallback | None) -> Forecast:
    """A Keras network: a catalogue preset built from its parameters, or a custom layer
    list stored whole in the model's hyperparameters."""
    from vur.forecasting import architectures, networks

    if algorithm.id == CUSTOM_NETWORK:
        layers, compilation, training = params["layers"], params["compilation"], params["training"]
    else:
        layers = architectures.catalogue_architecture(algorithm.id, params, horizon)
        compilation, training = architectures.catalogue_fit_settings(params)
    result = networks.forecast_with_network(data, horizon, freq, levels, layers, compilation, training, input_size=params.get("input_size"), seed=params.get("seed", 0), on_epoch=on_epoch)
    details = {"epochs_run": result.epochs_run, "input_size": result.input_size, "history": result.history}
    return Forecast(result.frame, details, NetworkForecaster(result.model, result.input_size, result.scalers, result.frame, data, freq) if keep_model else None)


def _statistical(algorithm: Algorithm, params: dict[str, Any], data: pd.DataFrame, horizon: int, freq: str, levels: list[int], keep_model: bool, runs: SeriesRuns | None = None) -> Forecast:
    from statsforecast import StatsForecast

    engine = StatsForecast(models=[algorithm.build(params)], freq=freq, n_jobs=1)
    coded = _with_coded_ids(data, runs or SeriesRuns.of(data))
    if not keep_model:
        # The same forecast as fit then predict, without keeping each series' fitted model
        # (nor its in-sample values): a quarter less time.
        return Forecast(_standard(engine.forecast(df=coded, h=horizon, level=levels or None), levels))
    fitted = engine.fit(df=coded)
    frame = _standard(fitted.predict(h=horizon, level=levels or None), levels)
    return Forecast(frame, forecaster=StatisticalForecaster(fitted, frame, data, freq))


def _with_coded_ids(data: pd.DataFrame, runs: SeriesRuns) -> pd.DataFrame:
    """`data` (whose series are `runs`) with categorical ids, categories in the order
    statsforecast sorts text ids in: it counts and orders categories by their codes, and
    text by hashing and comparing every id, which takes it two to three times as long
    over M4 Hourly (350,000 rows)."""
    import pandas as pd

    # Each series' rows together, in text order (as the training data is): the codes are its run numbers.
    in_order = len(runs.ids) < 2 or bool((runs.ids[1:] > runs.ids[:-1]).all())
    ids = pd.Categorical.from_codes(runs.codes(), runs.ids) if in_order else pd.Categorical(data["unique_id"])
    return pd.DataFrame({name: ids if name == "unique_id" else data[name] for name in data.columns}, copy=False)


def _regression(algorithm: Algorithm, params: dict[str, Any], data: pd.DataFrame, horizon: int, freq: str, levels: list[int], keep_model: bool, future: pd.DataFrame | None) -> Forecast:
    """A global regressor over lag features of every series, forecasting recursively.
    Further columns of `data` are dynamic exogenous features; without their `future`
    values nothing can be forecast (the frame is empty), but the fitted model is kept."""
    from mlforecast import MLForecast
    from mlforecast.target_transforms import Differences, LocalStandardScaler
    from mlforecast.utils import PredictionIntervals

    season = params["season_length"]
    transforms: list[Any] = [LocalStandardScaler()] if params["scale"] else []
    if params["difference"] == "seasonal" and season > 1:
        transforms.append(Differences([season]))
    elif params["difference"] != "none":
        transforms.append(Differences([1]))
    forecaster = MLForecast(
        models={POINT: algorithm.build(params)},
        freq=freq,
        lags=lag_list(params),
        date_features=calendar_features(freq) if params["calendar"] else None,
        target_transforms=transforms,
    )
    shortest = int(data.groupby("unique_id").size().min())
    intervals = levels and shortest >= algorithm.history_needed(params, horizon, INTERVAL_WINDOWS + 1)
    # static_features=[]: every column besides the target is a value of its own timestamp.
    forecaster.fit(data, static_features=[], prediction_intervals=PredictionIntervals(n_windows=INTERVAL_WINDOWS, h=horizon) if intervals else None)
    exogenous = [c for c in data.columns if c not in ("unique_id", "ds", "y")]
    # Beyond the data the exogenous values are unknown: the kept model's baseline is made
    # from held ones, for its interval widths (which do not depend on them), not served.
    held = bool(exogenous) and future is None
    values = (held_future(data, exogenous, horizon, freq) if held else future) if exogenous else None
    baseline = _standard(forecaster.predict(horizon, level=levels if intervals else None, X_df=values), levels if intervals else [])
    frame = baseline.iloc[:0] if held else baseline
    importance = _importance(getattr(forecaster.models_[POINT], "feature_importances_", None), forecaster.ts.features_order_)
    details: dict[str, Any] = ({"feature_importance": importance} if importance else {}) | ({"exogenous": exogenous} if exogenous else {})
    return Forecast(frame, details, RegressionForecaster(forecaster, baseline, data, freq, exogenous) if keep_model else None)


def _importance(raw: Any, features: list[str]) -> dict[str, float]:
    """Each feature's share of the model's importance (the trees' splits; ridge's
    standardized coefficients), largest first; empty when the model has none (trained
    before ridge reported it) or it learned nothing (a target the transforms made constant)."""
    import numpy as np

    if raw is None or (total := float(np.sum(raw))) <= 0:
        return {}
    shares = np.asarray(raw, dtype=float) / total
    return {name: round(float(v), 6) for name, v in sorted(zip(features, shares, strict=True), key=lambda kv: -kv[1])}


def _prophet(algorithm: Algorithm, params: dict[str, Any], data: pd.DataFrame, horizon: int, freq: str, levels: list[int], keep_model: bool) -> Forecast:
    """One Prophet per series; intervals are quantiles of its predictive samples."""
    import logging

    import numpy as np
    import pandas as pd

    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)  # it logs every fit at INFO
    frames, models = [], {}
    for uid, part in data.groupby("unique_id", sort=False):
        model = models[str(uid)] = algorithm.build(params)
        model.fit(part[["ds", "y"]], seed=params["seed"])  # Stan's seed: the same fit, run to run
        future = model.make_future_dataframe(periods=horizon, freq=freq, include_history=False)
        point = model.predict(future)["yhat"].to_numpy()
        columns = {"unique_id": uid, "ds": future["ds"].to_numpy(), POINT: point}
        if levels:
            np.random.seed(params["seed"])  # Prophet samples with numpy's global generator
            samples = model.predictive_samples(future)["yhat"]
            for level in levels:
                # Sampled bounds can miss a narrow interval's centre: keep the point inside.
                columns[f"lo-{level}"] = np.minimum(np.percentile(samples, 50 - level / 2, axis=1), point)
                columns[f"hi-{level}"] = np.maximum(np.percentile(samples, 50 + level / 2, axis=1), point)
        frames.append(pd.DataFrame(columns))
    frame = pd.concat(frames, ignore_index=True)
    return Forecast(frame, forecaster=ProphetForecaster(models, frame, data, freq) if keep_model else None)


def calendar_features(freq: str) -> list[str]:
    """The calendar attributes that vary at this frequency and may carry a pattern."""
    unit = freq.lstrip("0123456789")
    if unit in ("h", "min", "s"):
        return ["hour", "dayofweek"]
    if unit == "D":
        return ["dayofweek", "month"]
    if unit in ("W", "MS", "ME"):
        return ["month"]
    if unit in ("QS", "QE"):
        return ["quarter"]
    return []


# --- auto ---------------------------------------------------------------------

# Observations per cycle for the frequencies we infer, and the longer cycle that
# usually rides on top (the week for sub-daily data, the year for daily data).
SEASONS = {"h": (24, 168), "30min": (48, 336), "15min": (96, 672), "10min": (144, 1008), "min": (60, 1440), "D": (7, 365), "W": (52, None), "MS": (12, None), "ME": (12, None), "QS": (4, None), "QE": (4, None)}


def default_season(freq: str) -> int:
    return SEASONS.get(freq, (1, None))[0]


def portfolio(params: dict[str, Any], freq: str, shortest: int, horizon: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The candidates `auto` compares: seasonal naive, MSTL with every cycle the data is
    long enough to show, and global gradient-boosted regressors on lag features, on the
    level and on seasonal differences. Lags are capped so that the shortest series
    still trains after the validation windows are held out."""
    season = params["season_length"] or default_season(freq)
    _, long_cycle = SEASONS.get(freq, (season, None))
    usable = shortest - params["cv_windows"] * horizon
    if usable <= season:
        return {"naive": ("naive", {})}
    candidates: dict[str, tuple[str, dict[str, Any]]] = {"seasonal_naive": ("seasonal_naive", {"season_length": season})}
    if season > 1 and usable > 2 * season:
        second = long_cycle if long_cycle and usable > 2 * long_cycle else 0
        candidates["mstl"] = ("mstl", {"season_length": season, "second_season": second})
    seasonal_lags = max(1, min(7, usable // (2 * season) if season > 1 else 1))
    lags = {"season_length": season, "lags": max(1, min(season, usable // 4)), "seasonal_lags": seasonal_lags, "scale": True, "calendar": True}
    if usable > 2 * (lags["lags"] + season):
        candidates["lightgbm_seasonal_difference"] = ("lightgbm", {**lags, "difference": "seasonal"})
        candidates["lightgbm_level"] = ("lightgbm", {**lags, "difference": "none"})
        candidates["xgboost_seasonal_difference"] = ("xgboost", {**lags, "difference": "seasonal"})
    return candidates


def _auto(algorithm: Algorithm, params: dict[str, Any], data: pd.DataFrame, horizon: int, freq: str, levels: list[int], keep_model: bool) -> Forecast:
    """Backtest every candidate over the last `cv_windows` horizons of `data`, then
    forecast each series with the mean of the candidates that did best on it."""
    import numpy as np
    import pandas as pd

    shortest = int(data.groupby("unique_id").size().min())
    candidates = portfolio(params, freq, shortest, horizon)
    position = data.groupby("unique_id").cumcount()
    size = data.groupby("unique_id")["y"].transform("size")
    errors: dict[str, list[pd.Series]] = {name: [] for name in candidates}
    for window in range(params["cv_windows"], 0, -1):
        cut = size - window * horizon
        train, actual = data[position < cut], data[(position >= cut) & (position < cut + horizon)]
        for name, result in _candidate_forecasts(candidates, train, horizon, freq, [], keep_model=False).items():
            errors[name].append(_series_error(actual.merge(result.frame, on=["unique_id", "ds"]), train, params["season_length"] or default_season(freq)))
    scores = pd.DataFrame({name: pd.concat(parts, axis=1).mean(axis=1) for name, parts in errors.items()})
    # A candidate that failed on a series (no score) ranks last there.
    ranks = scores.fillna(np.inf).rank(axis=1, method="first")
    chosen = ranks.le(params["ensemble_size"])

    # Only the candidates some series chose are fitted on the whole history.
    finals = _candidate_forecasts({name: c for name, c in candidates.items() if chosen[name].any()}, data, horizon, freq, levels, keep_model)
    frames = {name: result.frame for name, result in finals.items()}
    columns = [POINT] + [c for c in next(iter(frames.values())).columns if c.startswith(("lo-", "hi-")) and all(c in f.columns for f in frames.values())]
    stacked = pd.concat([f.assign(candidate=name) for name, f in frames.items()])
    picked = stacked[chosen.stack().reindex(pd.MultiIndex.from_arrays([stacked["unique_id"], stacked["candidate"]])).to_numpy(dtype=bool)]
    frame = picked.groupby(["unique_id", "ds"], as_index=False)[columns].mean()
    details = {
        "candidates": {name: {"algorithm": algo, "hyperparameters": p} for name, (algo, p) in candidates.items()},
        "validation_score": {name: round(float(v), 6) for name, v in scores.mean().items()},
        "chosen_for_series": {name: int(n) for name, n in chosen.sum().items()},
    }
    choices = {str(uid): [name for name in finals if row[name]] for uid, row in chosen.iterrows()}
    fitted = {name: result.forecaster for name, result in finals.items() if result.forecaster is not None}
    return Forecast(frame, details, EnsembleForecaster(fitted, choices, frame, data, freq) if keep_model else None)


def _candidate_forecasts(candidates: dict[str, tuple[str, dict[str, Any]]], data: pd.DataFrame, horizon: int, freq: str, levels: list[int], keep_model: bool) -> dict[str, Forecast]:
    results = {}
    for name, (algorithm_id, given) in candidates.items():
        candidate = get_algorithm(algorithm_id)
        results[name] = forecast(candidate, candidate.resolve(given), data, horizon, freq, levels, keep_model=keep_model)
    return results


def _series_error(merged: pd.DataFrame, train: pd.DataFrame, season: int) -> pd.Series:
    """Per series, a scale-free error: sMAPE (as a fraction) plus MASE."""
    absolute = (merged["y"] - merged[POINT]).abs()
    denominator = merged["y"].abs() + merged[POINT].abs()
    smape = (2 * absolute / denominator.where(denominator > 0)).fillna(0).groupby(merged["unique_id"]).mean()
    mase = absolute.groupby(merged["unique_id"]).mean() / naive_scale(train, season)
    return smape + mase.fillna(smape)


def naive_scale(train: pd.DataFrame, season: int, runs: SeriesRuns | None = None) -> pd.Series:
    """Per series, the in-sample mean absolute error of the seasonal naive forecast: the
    denominator of MASE (NaN where it is zero or the series too short). `runs`: the
    series of `train`, when the caller has them."""
    import numpy as np
    import pandas as pd

    lag = season if season > 1 else 1
    runs = runs or SeriesRuns.of(train)
    codes = runs.codes()
    # Each point against the one `lag` rows before it, where both are of one series: as
    # each series' rows are together, that is where its position is `lag` or more.
    y = train["y"].to_numpy(np.float64)
    error = np.abs(y[lag:] - y[:-lag])
    series = codes[lag:]
    known = (series == codes[:-lag]) & ~np.isnan(error)
    # The other pairs weigh nothing (adding 0.0 leaves each sum as it was): no copies of the kept ones.
    with np.errstate(invalid="ignore"):  # a series without a pair of points: 0 / 0, NaN
        mean = np.bincount(series, np.where(known, error, 0.0), len(runs.ids)) / np.bincount(series, known, len(runs.ids))
    return pd.Series(mean, index=pd.Index(runs.ids, name="unique_id"), name="y").where(lambda scale: scale > 0)


def _standard(frame: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
    """unique_id, ds, mean, lo-L, hi-L whatever the library named its model (and the ids
    as the data had them, not categorical: see _with_coded_ids)."""
    frame = frame.reset_index() if "unique_id" not in frame.columns else frame
    alias = next(c for c in frame.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c)
    renamed = {alias: POINT} | {f"{alias}-{side}-{level}": f"{side}-{level}" for level in levels for side in ("lo", "hi")}
    return frame.rename(columns=renamed)[["unique_id", "ds", *renamed.values()]].astype({"unique_id": object})
