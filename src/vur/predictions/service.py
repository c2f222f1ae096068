"""Predictions: load a model version's fitted forecaster, forecast, record the answer.

The forecaster is unpickled once per version and kept (`load_forecaster`); from then on
a request that gives no new observations slices the forecast the fitted model made from
the end of its history, and one that does runs the model on the extended history. Model
libraries are imported on the first prediction, not when the API starts.
"""

from __future__ import annotations

import math
import pickle
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache, partial
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, Select, and_, bindparam, event, func, insert, select, update
from sqlalchemy.orm import Session

from vur.core.db import Database, naive_utc, on_commit, utcnow
from vur.core.errors import validation_details
from vur.core.events import Event, publish_after_commit
from vur.core.metrics import REGISTRY, relayed_counter
from vur.core.recent import Recent
from vur.core.repository import get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.predictions.exceptions import InvalidPredictionRequest, ModelNotServable, PredictionNotFound
from vur.predictions.models import Prediction
from vur.predictions.schemas import MAX_OBSERVATIONS, FutureValues, Observation, PredictRequest
from vur.predictions.scoring import Actuals, score_from
from vur.registry.exceptions import ModelNotFound
from vur.registry.models import ModelStatus, ModelVersion, RegisteredModel
from vur.registry.service import FORECASTER_FILE

if TYPE_CHECKING:
    import pandas as pd

    from vur.forecasting.forecasters import Forecaster

# Relayed: a batch job's predictions, counted in its job process, reach the API's /metrics.
PREDICTIONS = relayed_counter("vur_predictions_total", "Predictions answered", ["source"])
# Not relayed: each process observes its own (a batch job's latencies stay in its job process).
PREDICTION_SECONDS = Histogram(
    "vur_prediction_seconds", "Time to compute one prediction", ["source"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5), registry=REGISTRY
)
# Future values of each exogenous column a prediction's record keeps.
EXOGENOUS_KEPT = 1000
# The series id of a model trained without a series column (as training names it).
SINGLE_SERIES = "series_1"
_EPOCH, _MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)


@lru_cache(maxsize=32)
def load_forecaster(store: ArtifactStore, key: str) -> Forecaster:
    """A version's artifacts never change, so its forecaster is loaded once."""
    with store.open(key) as handle:
        return pickle.load(handle)


# Library models are not safe to run from two threads at once (mlforecast keeps state
# while it predicts recursively): one lock per loaded forecaster.
_model_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def get_prediction(session: Session, prediction_id: uuid.UUID, workspace_id: uuid.UUID) -> Prediction:
    return get_scoped(session, Prediction, prediction_id, workspace_id, PredictionNotFound)


@dataclass(frozen=True)
class ServedModel:
    """What a forecast reads of a registered model (a RegisteredModel has it too), read
    without the ORM: loading the model and its version as ORM objects cost a single
    forecast a third of a millisecond more than reading these columns."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    status: ModelStatus
    config: dict[str, Any]


@dataclass(frozen=True)
class ServedVersion:
    """What a forecast reads of a model version: its number and where its files are."""

    number: int
    artifact_prefix: str


# The model a forecast is made with: as the routes that load it read it, or just its served columns.
Model = RegisteredModel | ServedModel


def servable_version(session: Session, model: Model, number: int | None) -> ServedVersion:
    """Version `number` (default the latest) of a model already loaded."""
    return servable_model(session, model.id, model.workspace_id, number)[1]


def servable_model(reader: Session | Connection, model_id: uuid.UUID, workspace_id: uuid.UUID, number: int | None) -> tuple[ServedModel, ServedVersion]:
    """The workspace's model and its version `number` (default the latest), read in one
    query (in a session, or on a connection): a single forecast's lookups are a good part of its cost."""
    params = {"model_id": model_id, "workspace_id": workspace_id} | ({"number": number} if number is not None else {})
    row = reader.execute(_model_with_version(latest=number is None), params).first()
    if row is None:
        raise ModelNotFound.for_id(RegisteredModel.__resource__, model_id)
    model = ServedModel(row.id, row.workspace_id, row.kind, row.status, row.config)
    _check_forecaster(model)
    return model, _servable(model, ServedVersion(row.number, row.artifact_prefix) if row.number is not None else None, number)


# The model and version each single forecast was made with, kept a second from when they
# were read (`served_model`; see `vur.core.recent`): their lookup cost a forecast half a
# millisecond, run right after the previous library call has left the processor's caches
# cold. A change to a model or version (or any deletion: a cascade may take models with
# it) committed in this process forgets them; and an entry is used only while the job
# runner's `idle_epoch` is the one it was read in (a training job writes its version from
# a process of its own). A change committed by another process is served within
# SERVED_SECONDS, as a change to a user is (`vur.identity.auth`).
SERVED_SECONDS = 1.0
_served_models: Recent[tuple[uuid.UUID, uuid.UUID, int | None], tuple[ServedModel, ServedVersion]] = Recent(SERVED_SECONDS)


def served_model(database: Database, model_id: uuid.UUID, workspace_id: uuid.UUID, number: int | None, jobs_epoch: int | None) -> tuple[ServedModel, ServedVersion]:
    """`servable_model`, kept as said above. `jobs_epoch`: the job runner's `idle_epoch`
    as the request found it (0 in a process that runs no jobs; None while a job runs:
    nothing is kept)."""
    key = (model_id, workspace_id, number)
    if jobs_epoch is not None and (held := _served_models.get(key, jobs_epoch)) is not None:
        return held
    mark = _served_models.mark()
    with database.engine.connect() as connection:
        model, version = servable_model(connection, model_id, workspace_id, number)
    if jobs_epoch is not None:
        _served_models.keep(key, (model, version), mark, jobs_epoch)
    return model, version


@event.listens_for(Session, "after_flush")
def _forget_served_of_changed_models(session: Session, _context: Any) -> None:
    if session.deleted or any(isinstance(o, RegisteredModel | ModelVersion) for o in (*session.new, *session.dirty)):
        on_commit(session, _served_models.forget)


@cache
def _model_with_version(latest: bool) -> Select[Any]:
    """Built once, with bound parameters: SQLAlchemy then reuses its cache key and compiled
    SQL instead of working them out again for every forecast. On the tables' columns, not
    the ORM's entities: the ORM's execution and loading steps are skipped."""
    models, versions = RegisteredModel.__table__, ModelVersion.__table__
    numbered = versions.alias()  # the versions the latest is chosen among, apart from the one joined
    wanted = select(func.max(numbered.c.number)).where(numbered.c.model_id == models.c.id).scalar_subquery() if latest else bindparam("number")
    return (
        select(
            models.c.id, models.c.workspace_id, models.c.kind, models.c.status, models.c.config, versions.c.number, versions.c.artifact_prefix
        )
        .select_from(models.outerjoin(versions, and_(versions.c.model_id == models.c.id, versions.c.number == wanted)))
        .where(models.c.id == bindparam("model_id"), models.c.workspace_id == bindparam("workspace_id"))
    )


def _check_forecaster(model: Model) -> None:
    """422 for a model of another kind, 409 for an archived one."""
    if model.kind != "forecaster":
        raise InvalidPredictionRequest(f"Model '{model.id}' is a {model.kind} model; this endpoint forecasts", {"model_id": "must be a forecaster"})
    if model.status == ModelStatus.archived:
        raise ModelNotServable(f"Model '{model.id}' is archived; restore it to predict with it", {"model_id": "archived"})


def _servable(model: Model, version: ServedVersion | None, number: int | None) -> ServedVersion:
    if version is None and number is None:
        raise ModelNotServable(f"Model '{model.id}' has no trained version yet (status {model.status.value})", {"model_id": "train the model first"})
    if version is None:
        raise InvalidPredictionRequest(f"Model '{model.id}' has no version {number}", {"version": "no such version"})
    return version


def fitted_model(store: ArtifactStore, model: Model, version: ServedVersion) -> tuple[str, Forecaster]:
    """The version's forecaster and its key; 409 when it cannot be had (a version from
    before fitted models were kept, or a file that no longer reads). The store is asked
    only when loading fails: a loaded forecaster is answered from memory."""
    key = f"{version.artifact_prefix}/{FORECASTER_FILE}"
    try:
        return key, load_forecaster(store, key)
    except Exception as exc:  # a damaged file, or a library that cannot read it: the model needs retraining, the server is fine
        if not store.exists(key):
            raise ModelNotServable(f"Version {version.number} of model '{model.id}' was trained before fitted models were kept; train it again", {"version": "retrain"}) from exc
        raise ModelNotServable(f"Version {version.number} of model '{model.id}' cannot be loaded ({type(exc).__name__}); train it again", {"version": "retrain"}) from exc


@dataclass(frozen=True)
class Answer:
    """A forecast's points as JSON (as a PredictionPoint writes them: the response and
    the record both hold them so), and their series and span."""

    outputs: tuple[dict[str, Any], ...]
    series_count: int
    first_ts: datetime | None
    last_ts: datetime | None

    @classmethod
    def of(cls, forecast: pd.DataFrame | dict[str, Any], levels: list[int]) -> Answer:
        """The points of a forecast: a frame, or its columns' arrays (`_forecast`), written
        as JSON straight from the columns: no PredictionPoint per point to validate and
        then dump again."""
        import numpy as np

        from vur.forecasting.forecasters import POINT

        bounds = {str(level): (forecast[f"lo-{level}"].tolist(), forecast[f"hi-{level}"].tolist()) for level in levels}
        ds = forecast["ds"]
        # Naive times straight from numpy as datetimes, without making pandas Timestamps first; zoned ones keep their zone.
        moments = np.asarray(ds, dtype="datetime64[us]").tolist() if isinstance(ds.dtype, np.dtype) else ds.tolist()
        series = [str(uid) for uid in forecast["unique_id"].tolist()]
        outputs = tuple(
            {
                "series_id": uid,
                "timestamp": stamp,
                "value": value,
                "lower": {level: lower[i] for level, (lower, _) in bounds.items()},
                "upper": {level: upper[i] for level, (_, upper) in bounds.items()},
            }
            for i, (uid, stamp, value) in enumerate(zip(series, to_jsonable_python(moments), forecast[POINT].tolist(), strict=True))
        )
        # A forecast's times are all naive or all zoned: the earliest and latest compare as they are.
        first, last = (naive_utc(min(moments)), naive_utc(max(moments))) if moments else (None, None)
        return cls(outputs, len(set(series)), first, last)


# A PredictionResponse as JSON: made so, not validated and dumped, for a single
# forecast's sake (the API writes it out with pydantic-core; a batch validates its own).
ResponseJson = dict[str, Any]


def predict(session: Session, store: ArtifactStore, model: Model, body: PredictRequest, source: str) -> ResponseJson:
    return predict_with(session, store, model, servable_version(session, model, body.version), body, source)


def predict_with(session: Session, store: ArtifactStore, model: Model, version: ServedVersion, body: PredictRequest, source: str) -> ResponseJson:
    """Forecast with `version` of `model` and record the answer (flushed, not committed);
    its observations score the model's earlier predictions (`scoring`)."""
    return record(session, compute(store, model, version, body, source))


@dataclass(frozen=True)
class Computed:
    """An answer made and not yet recorded: its prediction's row, the response, the
    actual values its observations give, and the seconds its forecast took."""

    row: dict[str, Any]
    response: ResponseJson
    actuals: Actuals
    seconds: float


def compute(store: ArtifactStore, model: Model, version: ServedVersion, body: PredictRequest, source: str) -> Computed:
    """The answer to `body` with `version` of `model`, recorded by nothing yet (a batch
    job makes all its answers before it records any)."""
    key, forecaster = fitted_model(store, model, version)
    levels = _check(forecaster, model, body)
    started = time.perf_counter()
    if body.observations or body.exogenous:
        answer = Answer.of(_forecast(forecaster, model, body, levels, key), levels)
    else:
        answer = _served(store, key, body.horizon, tuple(levels), tuple(body.series_ids or ()), _restoration(model))
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {"levels": levels, "series_ids": body.series_ids[:20] if body.series_ids else None, "observations": len(body.observations or [])}
    if body.observations:
        stamps = [o.timestamp for o in body.observations]  # naive (UTC) and zoned ones alike
        summary.update(observed_from=min(stamps, key=naive_utc).isoformat(), observed_to=max(stamps, key=naive_utc).isoformat())
    if body.exogenous and forecaster.exogenous:
        # The inputs drift is judged on, beside the observed values (monitoring.drift).
        summary["exogenous"] = {c: [row.values[c] for row in body.exogenous if c in row.values][:EXOGENOUS_KEPT] for c in forecaster.exogenous}
    row = {
        "id": uuid.uuid4(),
        "workspace_id": model.workspace_id,
        "model_id": model.id,
        "model_version": version.number,
        "source": source,
        "horizon": body.horizon,
        "series_count": answer.series_count,
        "input_summary": summary,
        "outputs": list(answer.outputs),
        "first_ts": answer.first_ts,
        "last_ts": answer.last_ts,
        "latency_ms": round(seconds * 1000, 3),
        "created_at": utcnow(),
    }
    response = {
        "prediction_id": str(row["id"]),
        "model_id": str(model.id),
        "model_version": version.number,
        "source": source,
        "horizon": body.horizon,
        "levels": levels,
        "predictions": row["outputs"],
        "latency_ms": row["latency_ms"],
        "created_at": to_jsonable_python(row["created_at"]),
    }
    return Computed(row, response, _actuals(body.observations, model) if body.observations else {}, seconds)


def record(session: Session, computed: Computed) -> ResponseJson:
    """Record an answer (flushed, not committed), its actual values scoring the model's
    earlier predictions first (`scoring`); the response."""
    row = computed.row
    longest = _longest_forecasts(session)
    if row["model_id"] not in longest:
        # As recorded now, not as when the answer was made: answers sent are recorded
        # after the ones before them (`vur.core.deferred`), which may have lengthened it.
        longest[row["model_id"]] = session.execute(_longest_forecast(), {"model_id": row["model_id"]}).scalar()
    known = longest[row["model_id"]]
    if computed.actuals:
        score_from(session, row["model_id"], computed.actuals, known)
    # A Core insert (the columns' defaults still apply): the ORM's unit of work for one new
    # row costs more than the rest of a served forecast.
    session.execute(insert(Prediction.__table__), row)
    if row["first_ts"] is not None and (span := (row["last_ts"] - row["first_ts"]).total_seconds()) > (known if known is not None else -1):
        session.execute(_lengthen_longest_forecast(), {"model_id": row["model_id"], "seconds": span})
        longest[row["model_id"]] = span
    on_commit(session, partial(_count, row["source"], computed.seconds))  # counted once recorded: a batch refused later rolls it back
    if row["source"] == "real_time":
        publish_after_commit(session, Event("predictions", "prediction", computed.response, str(row["workspace_id"])))
    return computed.response


def _longest_forecasts(session: Session) -> dict[uuid.UUID, float | None]:
    """The longest forecast span of each model as this transaction knows it: read once,
    then lengthened by its own records (a batch records many answers in one). Kept for
    the transaction only: one rolled back lengthened nothing."""
    transaction = session.get_transaction()
    held = session.info.get("longest_forecast_seconds")
    if held is None or held[0] is not transaction:
        held = session.info["longest_forecast_seconds"] = (transaction, {})
    return held[1]


@cache
def _longest_forecast() -> Any:
    models = RegisteredModel.__table__.c
    return select(models.longest_forecast_seconds).where(models.id == bindparam("model_id"))


@cache
def _lengthen_longest_forecast() -> Any:
    """Only ever lengthened: two transactions that lengthen it at once keep the longer.
    Bookkeeping, not a change to the model: its `updated_at` stays."""
    models = RegisteredModel.__table__.c
    longest = models.longest_forecast_seconds
    seconds = bindparam("seconds")
    lengthened = update(RegisteredModel.__table__).where(models.id == bindparam("model_id"), longest.is_(None) | (longest < seconds))
    return lengthened.values(longest_forecast_seconds=seconds, updated_at=models.updated_at)


def check_request(store: ArtifactStore, model: Model, version: ServedVersion, body: PredictRequest) -> None:
    """What can be known of a request without forecasting: a 422 naming the field for
    anything the model cannot do, as `compute` would refuse it (a batch job's requests
    are checked so before it runs)."""
    _, forecaster = fitted_model(store, model, version)
    _check(forecaster, model, body)
    if body.observations or body.exogenous:
        observations, future = _inputs(body, model)
        with _refusals():
            forecaster.check(body.horizon, observations, future)


def in_batch(index: int, error: InvalidPredictionRequest) -> InvalidPredictionRequest:
    """The error of one request of a batch, naming which."""
    return InvalidPredictionRequest(f"Request {index} of the batch: {error.message}", {f"requests.{index}.{field}": problem for field, problem in error.details.items()})


def _count(source: str, seconds: float) -> None:
    PREDICTIONS.labels(source).inc()
    PREDICTION_SECONDS.labels(source).observe(seconds)


def _check(forecaster: Forecaster, model: Model, body: PredictRequest) -> list[int]:
    """The levels to answer; 422 naming the field for anything the model cannot do."""
    problems: dict[str, str] = {}
    if body.horizon > forecaster.horizon:
        problems["horizon"] = f"this model forecasts at most {forecaster.horizon} steps; train it with a longer horizon for more"
    levels = forecaster.levels if body.levels is None else sorted(set(body.levels))
    if unknown := [level for level in levels if level not in forecaster.levels]:
        offered = ", ".join(map(str, forecaster.levels)) or "none"
        problems["levels"] = f"{unknown} not offered; this model's interval levels: {offered}"
    observed = {_series_of(o, model) for o in body.observations or []}
    if body.series_ids and (unseen := [s for s in body.series_ids if s not in forecaster.series_ids and s not in observed]):
        problems["series_ids"] = f"unknown series {unseen[:5]}; the model knows {len(forecaster.series_ids)} series"
    if model.config.get("series_id_column") and any(o.series_id is None for o in body.observations or []):
        problems["observations"] = "every observation needs a series_id: the model forecasts several series"
    if problem := _exogenous_problem(forecaster, model, body):
        problems["exogenous"] = problem
    if problems:
        raise InvalidPredictionRequest("The model cannot answer this request", problems)
    return levels


def _exogenous_problem(forecaster: Forecaster, model: Model, body: PredictRequest) -> str | None:
    """Future exogenous values are needed by a model fitted with them, for every series
    asked for, and refused by any other (the timestamps are checked by the forecaster)."""
    if not forecaster.exogenous:
        return "this model was trained without exogenous columns" if body.exogenous else None
    if not body.exogenous:
        return f"this model forecasts from future values of {forecaster.exogenous}: give them at each step to forecast"
    if model.config.get("series_id_column") and any(v.series_id is None for v in body.exogenous):
        return "every row needs a series_id: the model forecasts several series"
    if body.series_ids and (uncovered := sorted(set(body.series_ids) - {_series_of(v, model) for v in body.exogenous})):
        return f"no future values for series {uncovered[:5]}"
    return None


def _series_of(observation: Observation | FutureValues, model: Model) -> str:
    return observation.series_id or (SINGLE_SERIES if not model.config.get("series_id_column") else "")


@lru_cache(maxsize=1024)
def _served(store: ArtifactStore, key: str, horizon: int, levels: tuple[int, ...], series_ids: tuple[str, ...], restoration: str) -> Answer:
    """The forecast from the end of the training history, as answered: it depends on
    nothing but the (immutable) version and the request, so each shape is computed once."""
    import json

    from vur.forecasting.forecasters import original_units

    frame = load_forecaster(store, key).predict(horizon, list(levels))
    if series_ids:
        frame = frame[frame["unique_id"].astype(str).isin(series_ids)]
    return Answer.of(original_units({"target_restoration": json.loads(restoration)})(frame), list(levels))


def _restoration(model: Model) -> str:
    import json

    return json.dumps(model.config.get("target_restoration") or [])


def _forecast(forecaster: Forecaster, model: Model, body: PredictRequest, levels: list[int], key: str) -> dict[str, Any]:
    """The fitted model run on its history extended by the request's observations (and
    on the future exogenous values it was fitted to read): the forecast's columns, as
    arrays. No frame is built on the way, in or out: at a request's sizes pandas' fixed
    cost per frame and per column read is a good part of what the platform adds."""
    import numpy as np

    from vur.forecasting.forecasters import POINT, original_units

    observations, future = _inputs(body, model)
    with _refusals(), _model_locks[key]:
        columns = forecaster.forecast_columns(body.horizon, levels, observations, future)
    if not np.isfinite(np.asarray(columns[POINT], dtype=np.float64)).all():
        problem = "the model's forecast from them is not a finite number"
        raise InvalidPredictionRequest(f"The model cannot forecast from these observations: {problem}", {"observations": problem})
    if body.series_ids:
        wanted = set(body.series_ids)
        kept = np.fromiter((str(uid) in wanted for uid in columns["unique_id"]), dtype=bool, count=len(columns["unique_id"]))
        columns = {name: np.asarray(values)[kept] for name, values in columns.items()}
    return original_units(model.config)(columns)


def _inputs(body: PredictRequest, model: Model) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The request's observations (as arrays) and future values as the forecaster reads them."""
    return _observation_columns(body.observations or [], model), _future_frame(body.exogenous, model) if body.exogenous else None


@contextmanager
def _refusals() -> Iterator[None]:
    """The forecaster's refusal of a request's inputs as a 422 naming the field."""
    from vur.forecasting.forecasters import InvalidFutureValues, UnknownSeriesError

    try:
        yield
    except InvalidFutureValues as exc:
        raise InvalidPredictionRequest(f"The model cannot forecast from these future values: {exc}", {"exogenous": str(exc)}) from exc
    except (UnknownSeriesError, ValueError) as exc:
        raise InvalidPredictionRequest(f"The model cannot forecast from these observations: {exc}", {"observations": str(exc)}) from exc


def _observation_columns(observations: list[Observation], model: Model) -> dict[str, Any]:
    """unique_id, ds, y as arrays, in the request's order (the forecaster sorts them, one
    at the timestamp of a point of the kept history replacing it), y in the model's units."""
    import numpy as np

    from vur.forecasting.forecasters import training_units

    values = np.fromiter((o.value for o in observations), dtype=np.float64, count=len(observations))
    if undo := model.config.get("target_restoration"):
        values = training_units(undo)(values)
    return {
        "unique_id": np.array([_series_of(o, model) for o in observations], dtype=object),
        "ds": _datetime64([naive_utc(o.timestamp) for o in observations]),
        "y": values,
    }


def _datetime64(moments: list[datetime]) -> Any:
    """Naive datetimes as datetime64[ns], by way of their microseconds since the epoch:
    numpy converts datetime objects the slow way (24 of them cost a tenth of a millisecond)."""
    import numpy as np

    microseconds = np.fromiter(((moment - _EPOCH) // _MICROSECOND for moment in moments), dtype=np.int64, count=len(moments))
    return microseconds.view("datetime64[us]").astype("datetime64[ns]")


def _future_frame(rows: list[FutureValues], model: Model) -> pd.DataFrame:
    """unique_id, ds and a column per exogenous variable, given in the units of the upload
    and brought to those of the model's dataset (which preprocessing may have rescaled)."""
    import pandas as pd

    from vur.forecasting.forecasters import training_units

    frame = pd.DataFrame([{**row.values, "unique_id": _series_of(row, model), "ds": naive_utc(row.timestamp)} for row in rows])
    for column, undo in (model.config.get("exogenous_restoration") or {}).items():
        if column in frame.columns:
            frame[column] = training_units(undo)(frame[column])
    return frame.assign(ds=pd.to_datetime(frame["ds"]))


def _actuals(observations: list[Observation], model: Model) -> Actuals:
    return {(_series_of(o, model), naive_utc(o.timestamp).isoformat()): float(o.value) for o in observations}


def requests_from_csv(data: bytes, horizon: int, exogenous: list[str]) -> list[PredictRequest]:
    """One request per series of a CSV of observations (timestamp, value[, series_id]).
    For a model fitted with `exogenous` columns, a row whose value is empty gives their
    future values instead. 422 naming the column or the row that is wrong."""
    import polars as pl

    try:
        frame = pl.read_csv(data, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise InvalidPredictionRequest("The file is not a readable CSV", {"file": str(exc).splitlines()[0][:300]}) from exc
    missing = [c for c in ("timestamp", "value", *exogenous) if c not in frame.columns]
    if missing or frame.height == 0:
        needed = f"timestamp, value and the model's exogenous columns {exogenous}" if exogenous else "timestamp and value"
        raise InvalidPredictionRequest(f"The CSV needs the columns {needed}, and at least one row", {"file": f"missing columns: {missing}" if missing else "no rows"})
    if frame.height > MAX_OBSERVATIONS:
        raise InvalidPredictionRequest(f"At most {MAX_OBSERVATIONS} rows", {"file": f"{frame.height} rows"})
    observed: dict[str | None, list[Observation]] = {}
    ahead: dict[str | None, list[FutureValues]] = {}
    for row_number, row in enumerate(frame.iter_rows(named=True), start=2):  # row 1 is the header
        series_id = row.get("series_id") or None
        try:
            if exogenous and row["value"] in (None, ""):
                values = {c: float(row[c]) for c in exogenous if row[c] not in (None, "")}
                ahead.setdefault(series_id, []).append(FutureValues(series_id=series_id, timestamp=row["timestamp"], values=values))  # type: ignore[arg-type]
                continue
            value = float(row["value"]) if row["value"] not in (None, "") else None
            observed.setdefault(series_id, []).append(Observation(series_id=series_id, timestamp=row["timestamp"], value=value))  # type: ignore[arg-type]
        except (ValidationError, ValueError, TypeError) as exc:
            kind = "future values" if exogenous and row["value"] in (None, "") else "observation"
            raise InvalidPredictionRequest(f"Row {row_number} is not a valid {kind}", {f"row {row_number}": _problem(exc)}) from exc
    try:
        return [
            PredictRequest(horizon=horizon, observations=observed.get(sid), exogenous=ahead.get(sid), series_ids=[sid] if sid else None)
            for sid in dict.fromkeys([*observed, *ahead])
        ]
    except ValidationError as exc:  # a series given twice at one timestamp
        raise InvalidPredictionRequest("The rows of the CSV are not a valid request", {"file": _problem(exc)}) from exc


def _problem(exc: Exception) -> str:
    """What is wrong, in pydantic's words for each field it names."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field}: {message}" for field, message in validation_details(exc.errors()).items())[:300]
    return str(exc)[:300]


# --- reading ---------------------------------------------------------------------


def _filtered(workspace_id: uuid.UUID, model_id: uuid.UUID | None, source: str | None, since: datetime | None, until: datetime | None) -> Select[Any]:
    stmt = select(Prediction).where(Prediction.workspace_id == workspace_id)
    if model_id is not None:
        stmt = stmt.where(Prediction.model_id == model_id)
    if source is not None:
        stmt = stmt.where(Prediction.source == source)
    if since is not None:
        stmt = stmt.where(Prediction.created_at >= _aware_utc(since))
    if until is not None:
        stmt = stmt.where(Prediction.created_at < _aware_utc(until))
    return stmt


def _aware_utc(moment: datetime) -> datetime:
    """A time range bound without an offset is read as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_predictions(
    session: Session, workspace_id: uuid.UUID, *, model_id: uuid.UUID | None, source: str | None, since: datetime | None, until: datetime | None, limit: int, offset: int
) -> tuple[list[Prediction], int]:
    stmt = _filtered(workspace_id, model_id, source, since, until).order_by(Prediction.created_at.desc(), Prediction.id)
    return paginate(session, stmt, limit=limit, offset=offset)


def statistics(session: Session, workspace_id: uuid.UUID, *, model_id: uuid.UUID | None, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """Counts, latency percentiles and, where actual values have arrived, the error:
    overall and per model."""
    base = _filtered(workspace_id, model_id, None, since, until).subquery()
    by_source = dict(session.execute(select(base.c.source, func.count()).group_by(base.c.source)).all())
    rows = session.execute(
        select(base.c.model_id, base.c.latency_ms, base.c.scored_points, base.c.absolute_error_sum, base.c.squared_error_sum).order_by(base.c.created_at.desc()).limit(100_000)
    ).all()
    per_model: defaultdict[uuid.UUID | None, list[Any]] = defaultdict(list)
    for row in rows:
        per_model[row.model_id].append(row)
    return {
        "total": sum(by_source.values()),
        "by_source": by_source,
        **_summary(rows),
        "models": [{"model_id": mid, "count": len(items), **_summary(items)} for mid, items in sorted(per_model.items(), key=lambda kv: -len(kv[1]))],
    }


def error_from_sums(points: int, absolute_sum: float | None, squared_sum: float | None) -> tuple[float | None, float | None]:
    """MAE and RMSE of scored forecast points, from their error sums (None when none)."""
    if not points:
        return None, None
    return (absolute_sum or 0.0) / points, math.sqrt((squared_sum or 0.0) / points)


def _summary(rows: list[Any]) -> dict[str, Any]:
    latencies = sorted(r.latency_ms for r in rows)
    scored = sum(r.scored_points for r in rows)
    mae, rmse = error_from_sums(scored, sum(r.absolute_error_sum for r in rows), sum(r.squared_error_sum for r in rows))
    return {
        "latency_ms": {
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
            "p99": _percentile(latencies, 99),
            "mean": round(sum(latencies) / len(latencies), 3) if latencies else None,
        },
        "error": {
            "scored_points": scored,
            "mae": round(mae, 6) if mae is not None else None,
            "rmse": round(rmse, 6) if rmse is not None else None,
        },
    }


def _percentile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 3)
