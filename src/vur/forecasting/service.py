"""Configuring and starting training runs, and reading their results."""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

from sqlalchemy.orm import Session

from vur.core.events import Event, publish_after_commit
from vur.core.storage import ArtifactStore
from vur.datasets import service as datasets
from vur.datasets.models import Dataset
from vur.forecasting.algorithms import CUSTOM_NETWORK, Algorithm, Parameter, get_algorithm
from vur.forecasting.exceptions import AlreadyTraining, ForecastNeedsFutureValues, ForecastNotReady, InvalidTrainingConfig, NothingToTrainOn, NotTraining
from vur.forecasting.schemas import METRICS, CustomModelRequest, ForecastRequest, ForecastResponse, OptimizationSpec, OptimizeRequest, TrainingStatus, TrainRequest
from vur.jobs import service as jobs
from vur.jobs.models import Job, JobStatus
from vur.registry.exceptions import ModelArchived
from vur.registry.models import ModelStatus, RegisteredModel

TRAIN_JOB = "forecasting.train"


def configure(session: Session, store: ArtifactStore, workspace_id: uuid.UUID, user_id: uuid.UUID, body: TrainRequest) -> RegisteredModel:
    """A model in status `configured`: every choice checked against the catalogue and
    the dataset, nothing run yet."""
    algorithm = get_algorithm(body.algorithm)
    if not algorithm.listed:
        raise InvalidTrainingConfig(f"'{algorithm.id}' is configured through its own endpoint", {"algorithm": "custom networks: POST /api/v1/models/custom"})
    hyperparameters = algorithm.resolve(body.hyperparameters)
    study = study_spec(algorithm, body.optimization, "optimization.") if body.optimization.enabled else None
    return _new_model(session, store, workspace_id, user_id, body, algorithm, hyperparameters, study)


def configure_custom(session: Session, store: ArtifactStore, workspace_id: uuid.UUID, user_id: uuid.UUID, body: CustomModelRequest) -> RegisteredModel:
    """A network from the caller's layer list, checked before anything runs; the model's
    hyperparameters hold the whole architecture, compilation and training settings."""
    from vur.forecasting import architectures

    layers = [layer.model_dump(exclude_none=True) for layer in body.architecture.layers]
    if problems := architectures.check_architecture(layers, body.horizon):
        raise InvalidTrainingConfig("The network cannot forecast this horizon as described", problems)
    hyperparameters = {
        "layers": architectures.with_layer_defaults(layers),
        "compilation": body.compilation.model_dump(),
        "training": body.training.model_dump(),
        "input_size": body.input_size,
        "seed": body.seed,
    }
    return _new_model(session, store, workspace_id, user_id, body, get_algorithm(CUSTOM_NETWORK), hyperparameters, None)


def _new_model(
    session: Session,
    store: ArtifactStore,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    body: ForecastRequest,
    algorithm: Algorithm,
    hyperparameters: dict[str, Any],
    study: dict[str, Any] | None,
) -> RegisteredModel:
    dataset = datasets.get_dataset(session, body.dataset_id, workspace_id)
    splits = body.validation.n_splits if body.validation.method == "time_series_split" else 1
    config = {
        "date_column": body.date_column or dataset.config.get("date_column"),
        "target_column": body.target_column or dataset.config.get("target_column"),
        "series_id_column": body.series_id_column or dataset.config.get("series_id_column"),
        "horizon": body.horizon,
        "levels": body.levels,
        "frequency": dataset.frequency,
        "validation": {"method": body.validation.method, "n_splits": splits},
        "metrics": list(dict.fromkeys(body.metrics)) if isinstance(body, TrainRequest) else list(METRICS),
    }
    if study is not None:
        config["optimization"] = study
    _check_columns(dataset.detected_types, config)
    features = body.feature_columns if body.feature_columns is not None else dataset.config.get("feature_columns") or []
    exogenous, notes = _exogenous(algorithm, features, dataset.detected_types, config)
    split, split_notes = _test_split(dataset.config.get("split"))
    # Only what applies is kept: a model without these trains as before they existed.
    config |= {key: value for key, value in (("exogenous", exogenous), ("split", split), ("notes", notes + split_notes)) if value}
    # A target that preprocessing rescaled is trained on as it is, and every forecast,
    # interval and metric is brought back to the units it was uploaded in.
    if restoration := datasets.target_restoration(session, dataset, config["target_column"]):
        config["target_restoration"] = restoration
    # Likewise for exogenous columns: future values are given in the units of the upload.
    if rescaled := {column: undo for column in exogenous if (undo := datasets.target_restoration(session, dataset, column))}:
        config["exogenous_restoration"] = rescaled
    if notes := _check_history(store, dataset, config, algorithm, hyperparameters):
        config["notes"] = [*config.get("notes", []), *notes]
    model = RegisteredModel(
        workspace_id=workspace_id,
        created_by=user_id,
        kind="forecaster",
        name=body.name or f"{algorithm.name} on {dataset.name}",
        algorithm=algorithm.id,
        hyperparameters=hyperparameters,
        config=config,
        dataset_id=dataset.id,
        status=ModelStatus.configured,
        metrics={},
    )
    session.add(model)
    session.flush()
    return model


def start_training(session: Session, model: RegisteredModel, user_id: uuid.UUID) -> Job:
    if model.status == ModelStatus.training:
        raise AlreadyTraining(f"Model '{model.id}' is already training", {"job_id": str(model.training_job_id)})
    if model.kind != "forecaster":
        raise InvalidTrainingConfig(f"Model '{model.id}' is not a forecaster", {"kind": model.kind})
    if model.status == ModelStatus.archived:
        raise ModelArchived(f"Model '{model.id}' is archived; restore it to train it", {"status": "archived"})
    if model.dataset_id is None:
        # Loaded from a bundle, or its dataset was deleted: it serves what it has, and cannot learn more.
        raise NothingToTrainOn(f"Model '{model.id}' has no dataset to train on; configure a new model on a dataset", {"dataset_id": None})
    # The job puts the model back as it was (deployed stays deployed) when it ends.
    payload = {"model_id": str(model.id), "previous_status": model.status.value}
    job = jobs.enqueue(session, TRAIN_JOB, payload, workspace_id=model.workspace_id, created_by=user_id)
    model.status = ModelStatus.training
    model.training_job_id = job.id
    session.flush()
    publish_after_commit(
        session,
        Event("training", "training.queued", {"model_id": str(model.id), "job_id": str(job.id), "algorithm": model.algorithm}, str(model.workspace_id)),
    )
    return job


def cancel_training(session: Session, model: RegisteredModel) -> Job:
    """Stop the model's training: a queued job at once, a running one at its next
    progress report (each fold, trial or epoch); the model goes back to `configured`."""
    job = session.get(Job, model.training_job_id, with_for_update=True) if model.training_job_id else None
    if job is None or job.status not in (JobStatus.queued, JobStatus.running):
        raise NotTraining(f"Model '{model.id}' is not training", {"status": model.status.value})
    return jobs.request_cancel(session, job)


def optimize(session: Session, model: RegisteredModel, user_id: uuid.UUID, body: OptimizeRequest) -> Job:
    """Keep the study with the model's configuration and train: the job searches first,
    then trains with the best parameters it found."""
    study = study_spec(get_algorithm(model.algorithm), body)
    model.config = {**model.config, "optimization": study}
    return start_training(session, model, user_id)


# Grids larger than this are refused: each point is a full backtest.
MAX_GRID_POINTS = 10_000


def study_spec(algorithm: Algorithm, spec: OptimizationSpec | OptimizeRequest, prefix: str = "") -> dict[str, Any]:
    """The search, checked against the algorithm's parameter schema: every dimension
    names one of its parameters, and every value it may try is one the schema allows."""
    problems: dict[str, str] = {}
    metric = spec.metric.removeprefix("val_")
    if metric not in METRICS:
        problems[f"{prefix}metric"] = f"choose one of {list(METRICS)} (optionally prefixed with val_)"
    # Minimizing r2, or maximizing an error, would search for the worst parameters.
    objective = "maximize" if metric == "r2" else "minimize"
    if spec.objective not in (None, objective) and metric in METRICS:
        problems[f"{prefix}objective"] = f"{metric} is better when {'higher' if objective == 'maximize' else 'lower'}: {objective} it (or leave objective out)"
    given = spec.search_space if spec.search_space is not None else None
    space = {name: d.model_dump(exclude_none=True) for name, d in given.items()} if given is not None else algorithm.default_search_space()
    if not space:
        problems[f"{prefix}search_space"] = f"{algorithm.id} has nothing to tune by default: give a search_space"
    for name, dimension in space.items():
        where = f"{prefix}search_space.{name}"
        if name not in algorithm.parameters:
            problems[where] = f"not a parameter of {algorithm.id} (its parameters: {', '.join(algorithm.parameters) or 'none'})"
        elif problem := _dimension_problem(name, algorithm.parameters[name], dimension, spec.method):
            problems[where] = problem
    if not problems and spec.method == "grid" and math.prod(len(_grid_values(d)) for d in space.values()) > MAX_GRID_POINTS:
        problems[f"{prefix}search_space"] = f"the grid has more than {MAX_GRID_POINTS:,} points"
    if problems:
        raise InvalidTrainingConfig("The search cannot run", problems)
    return {"method": spec.method, "iterations": spec.iterations, "metric": metric, "objective": objective, "search_space": space}


def _dimension_problem(name: str, parameter: Parameter, dimension: dict[str, Any], method: str) -> str | None:
    if parameter.type != dimension["type"]:
        return f"{name} is of type {parameter.type}, not {dimension['type']}"
    choices = dimension.get("choices")
    if choices is None and parameter.type in ("choice", "bool"):
        return "give the choices to try"
    if choices is not None:
        return next((problem for value in choices if (problem := parameter.check(name, value))), None)
    if "min" not in dimension or "max" not in dimension:
        return "give min and max, or choices"
    low, high = dimension["min"], dimension["max"]
    if problem := parameter.check(name, low) or parameter.check(name, high):
        return problem
    if low > high:
        return "min is above max"
    if dimension.get("log") and low <= 0:
        return "a log scale needs min above 0"
    if method == "grid" and parameter.type == "float":
        return "a grid needs choices for a float parameter"
    return None


def _grid_values(dimension: dict[str, Any]) -> list[Any]:
    if "choices" in dimension:
        return list(dimension["choices"])
    return list(range(dimension["min"], dimension["max"] + 1))


def _check_columns(types: dict[str, str], config: dict) -> None:
    problems: dict[str, str] = {}
    for role, expected in (("date_column", "datetime"), ("target_column", "numeric")):
        column = config[role]
        if column is None:
            problems[role] = f"no {expected} column was found or given"
        elif column not in types:
            problems[role] = f"'{column}' is not a column of the dataset"
        elif types[column] != expected:
            problems[role] = f"'{column}' is {types[column]}, not {expected}"
    series = config["series_id_column"]
    if series is not None and series not in types:
        problems["series_id_column"] = f"'{series}' is not a column of the dataset"
    if config["frequency"] is None and "date_column" not in problems:
        problems["date_column"] = "the timestamps have no regular frequency"
    if problems:
        raise InvalidTrainingConfig("The dataset cannot be used for this training run", problems)


def _exogenous(algorithm: Algorithm, features: list[str], types: dict[str, str], config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The feature columns the lag-feature regressors read as exogenous regressors (the
    numeric ones), and a note for each column left aside."""
    if not features:
        return [], []
    if algorithm.engine != "mlforecast":
        return [], [f"feature_columns {features} are not used: {algorithm.id} takes no exogenous columns (lightgbm, xgboost, random_forest and linear do)"]
    roles = {config["date_column"], config["target_column"], config["series_id_column"]}
    if unknown := [c for c in features if c not in types]:
        raise InvalidTrainingConfig("The feature columns cannot be used", {"feature_columns": f"{unknown} are not columns of the dataset"})
    if taken := [c for c in features if c in roles]:
        raise InvalidTrainingConfig("The feature columns cannot be used", {"feature_columns": f"{taken} already serve as the date, target or series column"})
    numeric = list(dict.fromkeys(c for c in features if types[c] == "numeric"))
    skipped = [c for c in features if c not in numeric]
    return numeric, ([f"feature_columns {skipped} are not numeric and are not used"] if skipped else [])


def _test_split(split: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The dataset's time_series split, whose test part training holds out; a random one
    cannot test a forecaster (its test rows would sit between training rows) and is left aside."""
    if not split:
        return None, []
    if split["method"] != "time_series":
        return None, ["the dataset's random split is not used: a forecaster is tested on the latest part of each series (split with method time_series for test metrics)"]
    return {key: split[key] for key in ("method", "train_size", "validation_size", "test_size")}, []


def _check_history(store: ArtifactStore, dataset: Dataset, config: dict[str, Any], algorithm: Algorithm, hyperparameters: dict[str, Any]) -> list[str]:
    """Refuse now, not in the job, what the data cannot support: a target without values,
    timestamps off the frequency's grid, or series too short (before their test part) for
    the validation windows and the history the algorithm needs. Reads the rows as the job
    will (training.long_frame) and returns notes on what it fills and leaves out."""
    from vur.forecasting import grid
    from vur.forecasting.forecasters import SeriesRuns
    from vur.forecasting.training import long_frame

    target, exogenous = config["target_column"], config.get("exogenous") or []
    columns = [c for c in (config["date_column"], target, config["series_id_column"], *exogenous) if c]
    try:
        data, gaps = long_frame(datasets.load_frame(store, dataset, columns), config)
    except grid.OffGrid as exc:
        raise InvalidTrainingConfig("The timestamps are not regular", {"date_column": str(exc)}) from exc
    if data.empty:
        missing = f"every value of '{target}' is missing" if not exogenous else f"no row has a value of '{target}' and of each of {exogenous}"
        raise InvalidTrainingConfig("The target has no values", {"target_column": missing})
    known = data[~data["held_out"]] if "held_out" in data.columns else data
    shortest = int(SeriesRuns.of(known).lengths.min()) if len(known) else 0
    horizon, splits = config["horizon"], config["validation"]["n_splits"]
    needed = algorithm.history_needed(hyperparameters, horizon, splits)
    if shortest < needed:
        where = " before its test part" if "held_out" in data.columns else ""
        raise InvalidTrainingConfig(
            "The series are too short for this horizon and validation",
            {
                "horizon": f"the shortest series has {shortest} points with a target{where}; {splits} validation window(s) of {horizon} "
                f"plus the {needed - horizon * splits} points {algorithm.id} needs before them make {needed}: shorten the horizon or n_splits"
                + (f", or lower what sets {algorithm.id}'s history ({', '.join(names)})" if (names := algorithm.history_parameters()) else "")
            },
        )
    return gaps.notes([target, *exogenous])


_STATUS_WORDS = {
    JobStatus.queued: "queued",
    JobStatus.running: "training",
    JobStatus.succeeded: "completed",
    JobStatus.failed: "failed",
    JobStatus.cancelled: "cancelled",
}


# The job logs each epoch of a network as "Epoch 3/30 - loss: …".
_EPOCH_LINE = re.compile(r"Epoch (\d+)/(\d+)\b")


def training_status(session: Session, model: RegisteredModel) -> TrainingStatus:
    job = session.get(Job, model.training_job_id) if model.training_job_id else None
    if job is None:
        return TrainingStatus(status=model.status.value, progress=0, current_epoch=None, total_epochs=None, logs=[], metrics=model.metrics, job_id=None, error=None)
    if job.status == JobStatus.succeeded:
        # The model was read before its job, each in a statement of its own: a job that
        # ended in between committed the metrics after that read. Read them again.
        session.refresh(model)
    epoch = next((match for line in reversed(job.log) if (match := _EPOCH_LINE.match(line))), None)
    return TrainingStatus(
        status=_STATUS_WORDS[job.status],
        progress=job.progress,
        current_epoch=int(epoch[1]) if epoch else None,
        total_epochs=int(epoch[2]) if epoch else None,
        logs=job.log,
        metrics=model.metrics,
        job_id=job.id,
        error=job.error,
    )


def read_forecast(store: ArtifactStore, model: RegisteredModel) -> ForecastResponse:
    """The forecast made at the end of training; 409 for a model that forecasts from
    exogenous values, which are unknown beyond the data."""
    forecast = stored_forecast(store, model)
    if forecast.exogenous:
        raise ForecastNeedsFutureValues(
            f"Model '{model.id}' forecasts from future values of {forecast.exogenous}, unknown beyond the data: POST /api/v1/models/{model.id}/predict with them in `exogenous`",
            {"exogenous": forecast.exogenous},
        )
    return forecast


def stored_forecast(store: ArtifactStore, model: RegisteredModel) -> ForecastResponse:
    """What training stored, as it is (no points for a model with exogenous columns)."""
    if model.artifact_key is None:  # no version yet (a retraining model keeps its last one)
        raise ForecastNotReady(f"Model '{model.id}' has no forecast yet", {"status": model.status.value})
    with store.open(model.artifact_key) as handle:
        stored = json.load(handle)
    return ForecastResponse.model_validate({"model_id": model.id, **stored, "predictions": point_records(stored["predictions"])})


def read_results(store: ArtifactStore, model: RegisteredModel) -> dict:
    """Validation metrics per fold, forecast against actual over the latest window with
    residuals, test metrics and forecast against actual over the test part (when the
    dataset had a time_series split), fit time and library versions, as the training job
    stored them."""
    if model.artifact_key is None:  # no version yet (a retraining model keeps its last one)
        raise ForecastNotReady(f"Model '{model.id}' has no results yet", {"status": model.status.value})
    with store.open(model.artifact_key.rsplit("/", 1)[0] + "/results.json") as handle:
        # Versions trained before the test part existed answer the same fields.
        results = {"test_metrics": None, "test": [], "split": None, **json.load(handle)}
    return {**results, "validation": point_records(results["validation"]), "test": point_records(results["test"])}


def point_records(columns: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points a training stored column by column (`lower` and `upper` hold a column per
    level), as one record per point. Versions stored before columns hold records."""
    if isinstance(columns, list):
        return columns
    flat = {name: values for name, values in columns.items() if isinstance(values, list)}
    by_level = {name: levels for name, levels in columns.items() if isinstance(levels, dict)}
    rows = [dict(zip(flat, row, strict=True)) for row in zip(*flat.values(), strict=True)]
    for name, levels in by_level.items():
        for index, row in enumerate(rows):
            row[name] = {level: values[index] for level, values in levels.items()}
    return rows
