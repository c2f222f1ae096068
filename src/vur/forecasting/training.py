"""The training job: evaluate by rolling-origin validation, fit on the whole history,
forecast, store the result.

Runs in a worker process. Model libraries are imported here, inside the job.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

from sqlalchemy.orm import Session

from vur.core.db import get_database, utcnow
from vur.core.storage import LocalArtifactStore
from vur.datasets.models import Dataset
from vur.datasets.service import load_frame
from vur.forecasting.algorithms import get_algorithm
from vur.jobs.models import Job, JobStatus
from vur.jobs.registry import job
from vur.jobs.runner import JobContext
from vur.registry.models import ModelStatus, RegisteredModel
from vur.registry.service import model_folder

# Points of forecast-against-actual kept from the latest validation window.
VALIDATION_POINTS = 5000


def forecast_metrics(fold: Any, alias: str, train: Any, season_length: int) -> dict[str, float]:
    """Errors of one fold. rmse, mae, mape, smape and r2 pool every point; mase scales
    each series' error by its in-sample seasonal-naive error, then averages (as M4)."""
    import numpy as np

    actual, predicted = fold["y"].to_numpy(float), fold[alias].to_numpy(float)
    error = actual - predicted
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(predicted)
    spread = float(np.sum((actual - actual.mean()) ** 2))
    scaled = []
    for uid, part in fold.groupby("unique_id"):
        history = train.loc[train["unique_id"] == uid, "y"].to_numpy(float)
        lag = season_length if len(history) > season_length else 1
        scale = float(np.mean(np.abs(history[lag:] - history[:-lag]))) if len(history) > lag else 0.0
        if scale > 0:
            scaled.append(float(np.mean(np.abs(part["y"].to_numpy(float) - part[alias].to_numpy(float)))) / scale)
    return {
        "rmse": float(math.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error[nonzero] / actual[nonzero])) * 100) if nonzero.any() else float("nan"),
        "smape": float(np.mean(np.where(denominator == 0, 0.0, 2 * np.abs(error) / np.where(denominator == 0, 1, denominator))) * 100),
        "mase": float(np.mean(scaled)) if scaled else float("nan"),
        "r2": 1 - float(np.sum(error**2)) / spread if spread > 0 else float("nan"),
    }


def _long_frame(frame: Any, config: dict[str, Any]) -> Any:
    """The statsforecast layout: unique_id, ds, y, sorted, without missing targets."""
    import pandas as pd

    data = frame.to_pandas()
    series = config.get("series_id_column")
    long = pd.DataFrame(
        {
            "unique_id": data[series].astype(str) if series else "series_1",
            "ds": pd.to_datetime(data[config["date_column"]]),
            "y": pd.to_numeric(data[config["target_column"]], errors="coerce"),
        }
    )
    return long.dropna().sort_values(["unique_id", "ds"]).reset_index(drop=True)


def _training_ended_without_model(session: Session, job: Job) -> None:
    model = session.get(RegisteredModel, uuid.UUID(job.payload["model_id"]))
    if model is not None and model.status == ModelStatus.training:
        model.status = ModelStatus.configured if job.status == JobStatus.cancelled else ModelStatus.failed


@job("forecasting.train", retry_safe=True, max_attempts=2, on_unsuccessful=_training_ended_without_model)
def train_forecaster(ctx: JobContext, model_id: str) -> dict[str, Any]:
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
        folder = model_folder(model.workspace_id, model.id)
        columns = [c for c in (config["date_column"], config["target_column"], config.get("series_id_column")) if c]
        frame = load_frame(store, dataset, columns)
    result = _fit_and_forecast(ctx, algorithm_id, params, config, frame)
    key = f"{folder}/forecast.json"
    store.write_bytes(key, json.dumps({"algorithm": algorithm_id, **result.pop("forecast")}).encode())
    store.write_bytes(f"{folder}/results.json", json.dumps(result).encode())
    with database.session() as session:
        model = session.get(RegisteredModel, uuid.UUID(model_id), with_for_update=True)
        assert model is not None
        model.status = ModelStatus.trained
        model.metrics = result["metrics"]
        model.trained_at = utcnow()
        model.artifact_key = key
    ctx.publish("training", "training.completed", {"model_id": model_id, "metrics": result["metrics"]})
    return {"model_id": model_id, "metrics": result["metrics"], "folds": result["folds"]}



def _fit_and_forecast(ctx: JobContext, algorithm_id: str, params: dict[str, Any], config: dict[str, Any], frame: Any) -> dict[str, Any]:
    horizon, levels, freq = config["horizon"], config["levels"], config["frequency"]
    splits = config.get("validation", {}).get("n_splits", 1)
    wanted = config.get("metrics") or ["rmse", "mae", "mape", "smape"]
    season_length = params.get("season_length", 1)
    data = _long_frame(frame, config)
    lengths = data.groupby("unique_id").size()
    ctx.progress(10, f"Loaded {len(data):,} rows in {len(lengths)} series")
    needed = horizon * splits + season_length + 1
    if (short := lengths[lengths < needed]).size:
        raise ValueError(
            f"{short.size} series are shorter than {needed} points ({splits} validation window(s) of {horizon} + one season + 1), e.g. {short.index[0]!r}"
        )

    algorithm = get_algorithm(algorithm_id)
    from statsforecast import StatsForecast

    position = data.groupby("unique_id").cumcount()
    size = data.groupby("unique_id")["y"].transform("size")
    folds = []
    for fold in range(splits):
        # Rolling origin: fold k trains on everything before its window and forecasts it.
        cut = size - (splits - fold) * horizon
        train, window = data[position < cut], data[(position >= cut) & (position < cut + horizon)]
        started = time.perf_counter()
        forecast = StatsForecast(models=[algorithm.build(params)], freq=freq, n_jobs=1).forecast(df=train, h=horizon)
        seconds = time.perf_counter() - started
        alias = [c for c in forecast.columns if c not in ("unique_id", "ds")][0]
        merged = window.merge(forecast, on=["unique_id", "ds"], how="inner")
        if merged.empty:
            raise ValueError("the validation timestamps do not line up with the forecast; is the frequency regular?")
        scores = _rounded({k: v for k, v in forecast_metrics(merged, alias, train, season_length).items() if k in wanted})
        folds.append({"fold": fold + 1, "start": merged["ds"].min().isoformat(), "metrics": scores, "seconds": round(seconds, 4)})
        shown = ", ".join(f"{k}={v:.4g}" for k, v in scores.items() if v is not None)
        ctx.progress(20 + 50 * (fold + 1) / splits, f"Fold {fold + 1}/{splits}: {shown}", fold=fold + 1, metrics=scores)
        ctx.publish("training", "training.fold", {"job_id": str(ctx.job_id), "fold": fold + 1, "folds": splits, "metrics": scores})
    # Forecast against actual over the latest window, for plots and residual checks.
    validation = [
        {"series_id": str(r["unique_id"]), "timestamp": r["ds"].isoformat(), "actual": float(r["y"]), "forecast": float(r[alias]), "residual": float(r["y"] - r[alias])}
        for r in merged.head(VALIDATION_POINTS).to_dict("records")
    ]
    metrics = _rounded({k: _mean([f["metrics"][k] for f in folds]) for k in wanted})

    ctx.progress(70, "Fitting on the full history and forecasting")
    started = time.perf_counter()
    future = StatsForecast(models=[algorithm.build(params)], freq=freq, n_jobs=1).forecast(df=data, h=horizon, level=levels)
    fit_seconds = time.perf_counter() - started
    points = [
        {
            "series_id": str(row["unique_id"]),
            "timestamp": row["ds"].isoformat(),
            "value": float(row[alias]),
            "lower": {str(level): float(row[f"{alias}-lo-{level}"]) for level in levels},
            "upper": {str(level): float(row[f"{alias}-hi-{level}"]) for level in levels},
        }
        for row in future.to_dict("records")
    ]
    ctx.progress(95, f"Forecast {horizon} steps for {len(lengths)} series")
    return {
        "metrics": metrics,
        "folds": folds,
        "validation": validation,
        "fit_seconds": round(fit_seconds, 4),
        "versions": _library_versions(),
        "forecast": {"horizon": horizon, "levels": levels, "frequency": freq, "predictions": points},
    }


def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("vur", "statsforecast", "numpy", "pandas", "polars")}


def _mean(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else float("nan")


def _rounded(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (round(v, 6) if v is not None and math.isfinite(v) else None) for k, v in metrics.items()}
