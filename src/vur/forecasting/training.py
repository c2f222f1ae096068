"""The training job: evaluate by rolling-origin validation (and on the test part of the
dataset's time_series split, when it has one), fit on the whole history, forecast,
store the result.

Runs in a worker process. Model libraries are imported here, inside the job.
"""

from __future__ import annotations

import functools
import math
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from vur.core.db import get_database, utcnow
from vur.core.storage import LocalArtifactStore
from vur.datasets.models import Dataset
from vur.datasets.service import load_frame
from vur.forecasting import engines, grid
from vur.forecasting.algorithms import Algorithm, get_algorithm
from vur.forecasting.forecasters import SeriesRuns, held_future, original_units
from vur.jobs.models import Job, JobStatus
from vur.jobs.registry import job
from vur.jobs.runner import JobCancelled, JobContext
from vur.registry.models import ModelStatus, RegisteredModel
from vur.registry.service import FORECASTER_FILE, record_version, status_after_training, version_folder

# Points of forecast-against-actual kept from the latest validation window (and the test part).
VALIDATION_POINTS = 5000
DEFAULT_METRICS = ["rmse", "mae", "mape", "smape"]
# Series forecast from new data to time a prediction (results' predict_seconds).
PREDICT_TIMED_SERIES = 10


def forecast_metrics(fold: Any, alias: str, train: Any, season_length: int, runs: SeriesRuns | None = None) -> dict[str, float]:
    """Errors of one fold. rmse, mae, mape, smape and r2 pool every point; mase scales
    each series' error by its in-sample seasonal-naive error, then averages (as M4).
    `runs`: the series of `train`, when the caller has them."""
    import numpy as np

    actual, predicted = fold["y"].to_numpy(float), fold[alias].to_numpy(float)
    error = actual - predicted
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(predicted)
    spread = float(np.sum((actual - actual.mean()) ** 2))
    scaled = (fold["y"] - fold[alias]).abs().groupby(fold["unique_id"]).mean() / engines.naive_scale(train, season_length, runs)
    return {
        "rmse": float(math.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100) if nonzero.any() else float("nan"),
        "smape": float(np.mean(np.where(denominator == 0, 0.0, 2 * np.abs(error) / np.where(denominator == 0, 1, denominator))) * 100),
        "mase": float(scaled.mean()) if scaled.notna().any() else float("nan"),
        "r2": 1 - float(np.sum(error**2)) / spread if spread > 0 else float("nan"),
    }


def long_frame(frame: Any, config: dict[str, Any]) -> tuple[Any, grid.Gaps]:
    """The statsforecast layout: unique_id, ds, y and the exogenous columns, sorted, each
    series on its frequency's grid without missing values (grid.regularize), and what
    that filled. With a stored split, `held_out` marks each series' test part."""
    long = _sorted_long(frame, config)
    return grid.regularize(long, config["frequency"], ["y", *(config.get("exogenous") or [])])


def _sorted_long(frame: Any, config: dict[str, Any]) -> Any:
    """The long frame's columns, sorted by id as text then time, rows without a timestamp left out."""
    import pandas as pd
    import polars as pl

    series, date, exogenous = config.get("series_id_column"), config["date_column"], config.get("exogenous") or []
    text_ids = series is not None and frame.schema[series] == pl.String and frame[series].null_count() == 0
    presorted = (series is None or text_ids) and (isinstance(frame.schema[date], pl.Datetime) or frame.schema[date] == pl.Date)
    ids = None
    if presorted:
        frame, ids = _in_series_order(frame, series, date)
    data = frame.to_pandas()
    if series and ids is None:
        # Ids that are text already (none missing, which pandas would make "None") stay as they are.
        ids = data[series] if text_ids else data[series].astype(str)
    dates = data[date]
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        # Zoned times (an upload's with offsets, kept as UTC) become naive UTC, as everything
        # a forecast meets is: the observations and future values requests give, the sources streams read.
        dates = dates.dt.tz_convert(None)
    long = pd.DataFrame(
        {
            "unique_id": ids if series else "series_1",
            # Parsing what is already a datetime column would copy it for nothing.
            "ds": dates if pd.api.types.is_datetime64_any_dtype(dates) else pd.to_datetime(dates),
            "y": pd.to_numeric(data[config["target_column"]], errors="coerce"),
            **{column: pd.to_numeric(data[column], errors="coerce") for column in exogenous},
        },
        copy=False,
    )
    if long["ds"].hasnans:
        long = long[long["ds"].notna()].reset_index(drop=True)
    if not presorted:
        long = long.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True)
    if split := config.get("split"):
        # The split endpoint's rule, on the same rows (a missing target included): each
        # series' test part is the rows at or after train_size + validation_size of its length.
        by_series = long.groupby("unique_id")
        long["held_out"] = by_series.cumcount() / by_series["ds"].transform("size") >= split["train_size"] + split["validation_size"]
    return long


def _in_series_order(frame: Any, series: str | None, date: str) -> tuple[Any, Any]:
    """`frame` in the order pandas would give `_sorted_long` (by id as text, then time;
    stable) for a fraction of its time: Polars compares the ids as Arrow text, pandas as
    Python strings. Returns the sorted frame and None; or, when each series' rows are
    together and in time order (as uploads usually have them), the sorted frame without
    its ids and the ids as Python strings: only whole series are moved then, and each id
    becomes a Python string once, not once a row."""
    import numpy as np
    import polars as pl

    if series is None:
        return frame.sort(date, maintain_order=True), None
    ids = frame[series]
    starts = (ids != ids.shift(1)).fill_null(True).arg_true().to_numpy().astype(np.int64)
    names = ids.gather(starts).to_list()
    grouped = frame[date].null_count() == 0 and len(set(names)) == len(names)
    if grouped:
        stamps = frame[date].to_physical().to_numpy()
        # Each series in time order: a row earlier than the one before it starts a series.
        grouped = bool(np.isin(np.flatnonzero(stamps[1:] < stamps[:-1]) + 1, starts).all())
    if not grouped:
        return frame.sort([series, date], maintain_order=True), None
    order = sorted(range(len(names)), key=names.__getitem__)
    lengths = np.diff(np.append(starts, len(frame)))[order]
    rest = frame.drop(series)
    if order != list(range(len(order))):
        # Row i of the result is row i + (where its series starts in `frame` - where in the result).
        rows = np.arange(len(frame)) + np.repeat(starts[order] - (np.cumsum(lengths) - lengths), lengths)
        # In one chunk (a Parquet file's row groups make many, and gathering across them
        # costs four times as much) and by Polars' own index type (int64 costs four times too).
        rest = rest.rechunk()[pl.Series(rows, dtype=pl.get_index_type())]
    return rest, np.repeat(np.array(names, dtype=object)[order], lengths)


def _training_ended_without_model(session: Session, job: Job) -> None:
    model = session.get(RegisteredModel, uuid.UUID(job.payload["model_id"]))
    if model is not None and model.status == ModelStatus.training:
        model.status = status_after_training(model, job.payload.get("previous_status"), job.status)


@job("forecasting.train", retry_safe=True, max_attempts=2, on_unsuccessful=_training_ended_without_model)
def train_forecaster(ctx: JobContext, model_id: str, previous_status: str | None = None) -> dict[str, Any]:
    database = get_database(ctx.settings.resolved_database_url)
    store = LocalArtifactStore(ctx.settings.artifacts_dir)
    with database.session() as session:
        model = session.get(RegisteredModel, uuid.UUID(model_id))
        if model is None:
            raise LookupError(f"model {model_id} no longer exists")
        dataset = session.get(Dataset, model.dataset_id) if model.dataset_id else None
        if dataset is None:
            raise LookupError("the model's dataset no longer exists")
        algorithm_id, params, config = model.algorithm, dict(model.hyperparameters), dict(model.config)
        folder = version_folder(model)
        columns = [c for c in (config["date_column"], config["target_column"], config.get("series_id_column"), *(config.get("exogenous") or [])) if c]
        frame = load_frame(store, dataset, columns)
    try:
        with _writing(store, folder) as keep:
            result = _fit_and_forecast(ctx, algorithm_id, params, config, frame, keep)
            keep("forecast.json", _json({"algorithm": algorithm_id, **result.pop("forecast")}))
            keep("results.json", _json(result))
        with database.session() as session:
            model = session.get(RegisteredModel, uuid.UUID(model_id), with_for_update=True)
            assert model is not None
            model.hyperparameters = result["hyperparameters"]
            model.metrics = result["metrics"]
            model.trained_at = utcnow()
            number = record_version(session, model, folder, ctx.job_id).number
            model.status = status_after_training(model, previous_status, JobStatus.succeeded)
    except BaseException:
        store.delete_prefix(folder)  # a version that was not recorded leaves no files
        raise
    ctx.publish("training", "training.completed", {"model_id": model_id, "metrics": result["metrics"]})
    return {"model_id": model_id, "version": number, "metrics": result["metrics"], "folds": result["folds"], "test_metrics": result["test_metrics"]}


@contextmanager
def _writing(store: LocalArtifactStore, folder: str) -> Iterator[Callable[[str, bytes], None]]:
    """A function that writes a file into `folder` on a thread, so that the job goes on
    while it is written and hashed (both let go of the GIL; the fitted model of M4
    Hourly's 414 series is 13 MB). Leaving waits for every write and raises the first
    that failed."""
    from concurrent.futures import ThreadPoolExecutor

    written: list[Any] = []
    with ThreadPoolExecutor(max_workers=1) as writer:
        yield lambda name, content: written.append(writer.submit(store.write_bytes, f"{folder}/{name}", content))
    for future in written:
        future.result()


def _json(value: Any) -> bytes:
    """`value` as JSON, which json.load reads back to the same values (NaN and infinities
    written as json writes them). pydantic's encoder: the standard library's takes four
    times as long over the forecast's thousands of records."""
    import pydantic_core

    return pydantic_core.to_json(value, inf_nan_mode="constants")


def _fit_and_forecast(ctx: JobContext, algorithm_id: str, params: dict[str, Any], config: dict[str, Any], frame: Any, keep: Callable[[str, bytes], None]) -> dict[str, Any]:
    """Evaluates, fits and forecasts; `keep(name, content)` stores a file of the version
    (the fitted model, as soon as it is fitted). Returns the results and the forecast."""
    horizon, levels, freq = config["horizon"], config["levels"], config["frequency"]
    splits = config.get("validation", {}).get("n_splits", 1)
    algorithm = get_algorithm(algorithm_id)
    data, _ = long_frame(frame, config)  # what it filled is in the notes, found at configure
    # Validation, tuning and the test fit see only train + validation: never the test part.
    held_out = data.pop("held_out") if "held_out" in data.columns else None
    known, test = (data[~held_out], data[held_out]) if held_out is not None else (data, None)
    series = SeriesRuns.of(known)
    ctx.progress(5, f"Loaded {len(data):,} rows in {len(series.ids)} series" + (f", {len(test):,} of them held out for the test" if test is not None else ""))
    for note in config.get("notes") or []:
        ctx.log(note)
    study = None
    if config.get("optimization"):
        params, study = _search(ctx, algorithm, params, config, known)
    needed = algorithm.history_needed(params, horizon, splits)
    if (short := series.ids[series.lengths < needed]).size:
        before = " before their test part" if test is not None else ""
        raise ValueError(
            f"{short.size} series are shorter than {needed} points{before} ({splits} validation window(s) of {horizon} and the history {algorithm.id} needs), e.g. {short[0]!r}"
        )

    start = 40 if study else 10

    def report(fold: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in fold["metrics"].items() if v is not None)
        ctx.progress(start + (70 - start) * fold["fold"] / splits, f"Fold {fold['fold']}/{splits}: {shown}", fold=fold["fold"], metrics=fold["metrics"])
        ctx.publish("training", "training.fold", {"job_id": str(ctx.job_id), "fold": fold["fold"], "folds": splits, "metrics": fold["metrics"]})

    def fold_epoch(fold: int, epoch: int, epochs: int) -> None:
        # No log line per epoch of a validation fold; the call still stops a cancelled job.
        ctx.progress(start + (70 - start) * (fold - 1 + epoch / epochs) / splits)

    folds, metrics, merged = backtest(algorithm, params, config, known, report, fold_epoch, series)
    test_metrics, tested = None, None
    if test is not None:
        ctx.progress(70, "Fitting on train and validation, forecasting the test part")
        test_metrics, tested = evaluate_test(algorithm, params, config, known, test, lambda *_: ctx.progress(70))
        shown = ", ".join(f"{k}={v:.4g}" for k, v in (test_metrics or {}).items() if v is not None)
        ctx.progress(72, f"Test over {len(tested)} points: {shown}" if tested is not None else "The test part of the split has no points", test_metrics=test_metrics)

    ctx.progress(72 if test is not None else 70, "Fitting on the full history and forecasting")

    def epoch_done(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        shown = " - ".join(f"{name}: {value:.4g}" for name, value in logs.items())
        ctx.progress(70 + 25 * epoch / epochs, f"Epoch {epoch}/{epochs} - {shown}", epoch=epoch, epochs=epochs, metrics=logs)
        ctx.publish("training", "training.epoch", {"job_id": str(ctx.job_id), "epoch": epoch, "epochs": epochs, "metrics": logs})

    runs = series if test is None else SeriesRuns.of(data)
    started = time.perf_counter()
    future = engines.forecast(algorithm, params, data, horizon, freq, levels, on_epoch=epoch_done, runs=runs)
    fit_seconds = time.perf_counter() - started
    keep(FORECASTER_FILE, pickle.dumps(future.forecaster, protocol=pickle.HIGHEST_PROTOCOL))
    predict_seconds = _predict_seconds(future.forecaster, data, runs, horizon, freq)
    future.frame = original_units(config)(future.frame)
    points = _forecast_columns(future.frame, [level for level in levels if f"lo-{level}" in future.frame.columns])
    exogenous = future.forecaster.exogenous
    ctx.progress(95, f"Forecast {horizon} steps for {len(series.ids)} series" if not exogenous else f"Fitted; forecasts beyond the data need future values of {exogenous}")
    return {
        "hyperparameters": params,
        "metrics": metrics,
        "folds": folds,
        # Forecast against actual over the latest window, for plots and residual checks.
        "validation": _against_actual(merged),
        "test_metrics": test_metrics,
        "test": _against_actual(tested) if tested is not None else {},
        "split": config.get("split"),
        "fit_seconds": round(fit_seconds, 4),
        "predict_seconds": predict_seconds,
        "details": {**future.details, **({"notes": config["notes"]} if config.get("notes") else {})},
        "optimization": study,
        "versions": _library_versions(),
        "forecast": {"horizon": horizon, "levels": levels, "frequency": freq, "predictions": points, "exogenous": exogenous},
    }


def _forecast_columns(frame: Any, levels: list[int]) -> dict[str, Any]:
    """The stored forecast, column by column: a point per series and step, its bounds at
    `levels` (a column per level). As records, M4 Hourly's 20,000 points cost a job about
    50 ms to build and write, more than fitting a seasonal naive model takes: the records
    are made where they are read (`service.point_records`)."""
    return {
        "series_id": frame["unique_id"].astype(str).tolist(),
        "timestamp": _isoformat(frame["ds"]),
        "value": frame[engines.POINT].to_numpy(float).tolist(),
        "lower": {str(level): frame[f"lo-{level}"].to_numpy(float).tolist() for level in levels},
        "upper": {str(level): frame[f"hi-{level}"].to_numpy(float).tolist() for level in levels},
    }


def _against_actual(merged: Any) -> dict[str, list[Any]]:
    """Forecast against actual over the first VALIDATION_POINTS points, column by column."""
    kept = merged.head(VALIDATION_POINTS)
    actual, forecast = kept["y"].to_numpy(float), kept[engines.POINT].to_numpy(float)
    return {
        "series_id": kept["unique_id"].astype(str).tolist(),
        "timestamp": _isoformat(kept["ds"]),
        "actual": actual.tolist(),
        "forecast": forecast.tolist(),
        "residual": (actual - forecast).tolist(),
    }


def _isoformat(stamps: Any) -> list[str]:
    """Timestamps as ISO 8601 text; each distinct one formatted once (series share them)."""
    import numpy as np
    import pandas as pd

    codes, distinct = pd.factorize(stamps, use_na_sentinel=False)
    return np.array([stamp.isoformat() for stamp in distinct], dtype=object)[codes].tolist()


def _predict_seconds(forecaster: Any, data: Any, runs: SeriesRuns, horizon: int, freq: str) -> float:
    """What one prediction request costs the fitted model: it forecasts the first
    PREDICT_TIMED_SERIES series from new data (each one's last point given as a new
    observation), as the predict endpoint does, not from cache. A sample, because for
    some models (MSTL decomposes each series again) forecasting every series takes
    longer than the fit. `runs`: the series of `data`."""
    ends = (runs.starts + runs.lengths)[:PREDICT_TIMED_SERIES]
    latest = data.iloc[ends - 1]
    exogenous = forecaster.exogenous
    # The first series' rows are the frame's first rows.
    future = held_future(data.iloc[: ends[-1]], exogenous, horizon, freq) if exogenous else None
    started = time.perf_counter()
    forecaster.predict(horizon, [], latest, future)
    return round(time.perf_counter() - started, 4)


def evaluate_test(
    algorithm: Algorithm, params: dict[str, Any], config: dict[str, Any], known: Any, test: Any, on_epoch: Callable[..., None] | None = None
) -> tuple[dict[str, float | None] | None, Any]:
    """The test part forecast by the model fitted on train + validation, as it would be
    used: in windows of one horizon, each from the actual values before it, without
    refitting; each series' last window as long as what is left of its test part.
    Returns the metrics and forecast against actual (None, None for an empty test part)."""
    import pandas as pd

    horizon, exogenous = config["horizon"], config.get("exogenous") or []
    forecaster = engines.forecast(algorithm, params, known, horizon, config["frequency"], [], on_epoch=on_epoch).forecaster
    position = test.groupby("unique_id").cumcount()
    longest = int(position.max()) + 1 if len(test) else 0
    parts = []
    for origin in range(0, longest, horizon):
        window = test[(position >= origin) & (position < origin + horizon)]
        steps = window.groupby("unique_id").size()
        # One call per window length: a series' last window may be shorter.
        for length, series in steps.groupby(steps):
            rows = window[window["unique_id"].isin(series.index)]
            observed = test[(position < origin) & test["unique_id"].isin(series.index)]
            forecast = forecaster.predict(int(length), [], observed, rows[["unique_id", "ds", *exogenous]] if exogenous else None)
            parts.append(rows.merge(forecast, on=["unique_id", "ds"]))
    if not parts:
        return None, None
    restore = original_units(config)
    merged = restore(pd.concat(parts, ignore_index=True).sort_values(["unique_id", "ds"], kind="stable"))
    return _scores(merged, restore(known), params, config), merged


def backtest(
    algorithm: Algorithm,
    params: dict[str, Any],
    config: dict[str, Any],
    data: Any,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
    on_fold_epoch: Callable[[int, int, int], None] | None = None,
    runs: SeriesRuns | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float | None], Any]:
    """Rolling-origin validation: fold k trains on everything before its window of one
    horizon and forecasts it. Returns each fold, the mean metrics and the last window's
    forecast against actual. `on_fold_epoch(fold, epoch, epochs)` follows a network's
    training inside a fold. `runs`: the series of `data`, when the caller has them."""
    horizon, freq = config["horizon"], config["frequency"]
    splits = config.get("validation", {}).get("n_splits", 1)
    wanted = config.get("metrics") or DEFAULT_METRICS
    exogenous = config.get("exogenous") or []
    restore = original_units(config)
    runs = runs or SeriesRuns.of(data)
    codes = runs.codes()
    position, size = runs.positions(codes), runs.lengths[codes]
    folds = []
    for fold in range(splits):
        cut = size - (splits - fold) * horizon
        train, window = _rows(data, position < cut), _rows(data, (position >= cut) & (position < cut + horizon))
        train_runs = runs.first(runs.lengths - (splits - fold) * horizon)
        started = time.perf_counter()
        on_epoch = (lambda epoch, epochs, _, fold=fold: on_fold_epoch(fold + 1, epoch, epochs)) if on_fold_epoch else None
        # The exogenous values of the window are known: they are in the data.
        future = window[["unique_id", "ds", *exogenous]] if exogenous else None
        forecast = engines.forecast(algorithm, params, train, horizon, freq, [], on_epoch=on_epoch, future=future, keep_model=False, runs=train_runs).frame
        seconds = time.perf_counter() - started
        merged = restore(window.merge(forecast, on=["unique_id", "ds"], how="inner"))
        if merged.empty:
            raise ValueError("the validation timestamps do not line up with the forecast; is the frequency regular?")
        scores = _scores(merged, restore(train), params, config, train_runs)
        folds.append({"fold": fold + 1, "start": merged["ds"].min().isoformat(), "metrics": scores, "seconds": round(seconds, 4)})
        if on_fold is not None:
            on_fold(folds[-1])
    return folds, _rounded({k: _mean([f["metrics"][k] for f in folds]) for k in wanted}), merged


def _scores(merged: Any, train: Any, params: dict[str, Any], config: dict[str, Any], runs: SeriesRuns | None = None) -> dict[str, float | None]:
    """The configured metrics of a forecast against actual; mase scaled on `train` (whose series are `runs`, when given)."""
    wanted = config.get("metrics") or DEFAULT_METRICS
    season_length = params.get("season_length") or engines.default_season(config["frequency"])
    return _rounded({k: v for k, v in forecast_metrics(merged, engines.POINT, train, season_length, runs).items() if k in wanted})


def _rows(frame: Any, mask: Any) -> Any:
    """The rows of `frame` where `mask`, on a fresh index: selected column by column, for
    a third of what pandas' boolean indexing of the whole frame costs."""
    import numpy as np
    import pandas as pd

    # A column of numpy's own type as its array, any other (time zones) as pandas' extension array.
    return pd.DataFrame({name: (column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array)[mask] for name, column in frame.items()}, copy=False)


def _search(ctx: JobContext, algorithm: Algorithm, params: dict[str, Any], config: dict[str, Any], data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An Optuna study over the configured search space; each trial is a backtest of the
    algorithm with the trial's parameters over the model's own validation folds.
    Returns the best parameters and the study's record (every trial kept)."""
    import optuna

    spec = config["optimization"]
    metric, space = spec["metric"], spec["search_space"]
    scored = {**config, "metrics": list(dict.fromkeys([metric, *(config.get("metrics") or [])]))}
    sampler = {
        "bayesian": lambda: optuna.samplers.TPESampler(seed=0),
        "random": lambda: optuna.samplers.RandomSampler(seed=0),
        "grid": lambda: optuna.samplers.GridSampler({name: _grid(d) for name, d in space.items()}, seed=0),
    }[spec["method"]]()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=spec["objective"], sampler=sampler)
    trials = spec["iterations"] if spec["method"] != "grid" else min(spec["iterations"], math.prod(len(_grid(d)) for d in space.values()))
    history: list[dict[str, Any]] = []
    shortest = int(data.groupby("unique_id").size().min())
    splits = config.get("validation", {}).get("n_splits", 1)

    def objective(trial: Any) -> float:
        tried = {name: _suggest(trial, name, dimension) for name, dimension in space.items()}
        started = time.perf_counter()
        record: dict[str, Any] = {"number": trial.number, "params": tried}
        value = metrics = None
        try:
            candidate = algorithm.resolve({**params, **tried})
            if shortest < algorithm.history_needed(candidate, config["horizon"], splits):
                raise ValueError("the series are too short for these parameters")
            _, metrics, _ = backtest(algorithm, candidate, scored, data)
            value = metrics[metric]
        except JobCancelled:
            raise
        except Exception as exc:  # a trial whose parameters a library refuses is a failed trial, not a failed study
            record["error"] = f"{type(exc).__name__}: {exc}"
        record.update(value=value, metrics=metrics, seconds=round(time.perf_counter() - started, 4))
        history.append(record)
        # This trial is not complete until it returns: its value counts towards the best here.
        values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE] + ([value] if value is not None and math.isfinite(value) else [])
        best = (max if spec["objective"] == "maximize" else min)(values, default=None)
        ctx.progress(5 + 35 * len(history) / trials, f"Trial {len(history)}/{trials}: {metric}={value if value is None else f'{value:.4g}'}", trial=trial.number)
        ctx.publish("training", "training.trial", {"job_id": str(ctx.job_id), "trial": len(history), "trials": trials, "params": tried, "value": value, "best_value": best})
        return float("nan") if value is None else value

    study.optimize(objective, n_trials=trials)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ValueError(f"every trial failed; the last: {history[-1].get('error')}")
    best = algorithm.resolve({**params, **study.best_params})
    ctx.log(f"Best {metric}={study.best_value:.4g} with {study.best_params}")
    return best, {**spec, "best_params": study.best_params, "best_value": study.best_value, "best_trial": study.best_trial.number, "trials": history}


def _suggest(trial: Any, name: str, dimension: dict[str, Any]) -> Any:
    if "choices" in dimension:
        return trial.suggest_categorical(name, dimension["choices"])
    if dimension["type"] == "int":
        return trial.suggest_int(name, dimension["min"], dimension["max"], log=dimension.get("log", False))
    return trial.suggest_float(name, float(dimension["min"]), float(dimension["max"]), log=dimension.get("log", False))


def _grid(dimension: dict[str, Any]) -> list[Any]:
    return list(dimension["choices"]) if "choices" in dimension else list(range(dimension["min"], dimension["max"] + 1))


@functools.cache
def _library_versions() -> dict[str, str]:
    """The versions a worker process loaded, looked up once (reading package metadata
    costs a noticeable share of a short job)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("vur", "statsforecast", "mlforecast", "lightgbm", "xgboost-cpu", "scikit-learn", "prophet", "optuna", "keras", "torch", "numpy", "pandas", "polars"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _mean(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else float("nan")


def _rounded(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (round(v, 6) if v is not None and math.isfinite(v) else None) for k, v in metrics.items()}
