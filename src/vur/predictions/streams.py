"""Database connections and prediction streams.

A stream is a row in `prediction_streams`; the stream scheduler thread of each API
process runs the due ones. A run reads the source's rows newer than the model's training
history, and when some arrived since the previous run it predicts from them (the
prediction service records the answer and scores earlier forecasts against the new
actual values), pushes the answer on the `predictions` topic and moves the cursor. A
model fitted with exogenous columns forecasts from the source's rows ahead (value still
empty, exogenous columns filled); until they cover the horizon, the run waits, as it
does while a series' rows skip a step (a row late or missing in the source).
Taking a run is a compare-and-set on `last_run_at`, so several API processes never run
the same tick twice, and a restarted server carries on from the stored cursor.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import structlog
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from vur.core.db import Database, utcnow
from vur.core.errors import VurError
from vur.core.events import Event, publish_after_commit
from vur.core.periodic import PeriodicTask
from vur.core.repository import get_scoped
from vur.core.security import decrypt_secret, encrypt_secret
from vur.core.storage import ArtifactStore
from vur.forecasting.forecasters import MissingStep
from vur.pipelines.service import get_pipeline
from vur.predictions import service, sources
from vur.predictions.exceptions import DatabaseNotFound, InvalidPredictionRequest, InvalidSource, ModelNotServable, StreamNotFound, StreamNotRunning
from vur.predictions.models import DatabaseConnection, PredictionStream
from vur.predictions.schemas import MAX_OBSERVATIONS, DatabaseCreate, FutureValues, Observation, PredictRequest, StreamStart
from vur.registry.models import RegisteredModel
from vur.registry.service import get_model
from vur.settings import Settings

log = structlog.get_logger("vur.streams")

# A stream that fails this many runs in a row stops, with the last error kept.
MAX_CONSECUTIVE_FAILURES = 5


# --- connections -------------------------------------------------------------------


def create_connection(session: Session, settings: Settings, workspace_id: uuid.UUID, body: DatabaseCreate) -> DatabaseConnection:
    try:
        url = sources.checked_url(body.url, settings, workspace_id)
        sources.checked_spec(url, body.table_name, body.query, body.timestamp_column, body.value_column, body.series_column, body.exogenous_columns)
    except sources.SourceProblem as exc:
        raise InvalidSource("The source is not acceptable", exc.problems) from exc
    connection = DatabaseConnection(
        workspace_id=workspace_id,
        name=body.name,
        dialect=url.get_backend_name(),
        host=url.host,
        database=url.database if url.get_backend_name() != "sqlite" else url.database.rsplit("/", 1)[-1],
        url_encrypted=encrypt_secret(settings.resolved_secret_key(), url.render_as_string(hide_password=False)),
        table_name=body.table_name,
        query=body.query,
        timestamp_column=body.timestamp_column,
        value_column=body.value_column,
        series_column=body.series_column,
        exogenous_columns=body.exogenous_columns,
    )
    session.add(connection)
    session.flush()
    return connection


def get_connection(session: Session, connection_id: uuid.UUID, workspace_id: uuid.UUID) -> DatabaseConnection:
    return get_scoped(session, DatabaseConnection, connection_id, workspace_id, DatabaseNotFound)


def list_connections(session: Session, workspace_id: uuid.UUID) -> list[DatabaseConnection]:
    return list(session.scalars(select(DatabaseConnection).where(DatabaseConnection.workspace_id == workspace_id).order_by(DatabaseConnection.created_at.desc())))


def spec_of(connection: DatabaseConnection, settings: Settings) -> sources.SourceSpec:
    url = decrypt_secret(settings.resolved_secret_key(), connection.url_encrypted)
    columns = (connection.timestamp_column, connection.value_column, connection.series_column, tuple(connection.exogenous_columns))
    return sources.SourceSpec(url, connection.table_name, connection.query, *columns)


def check_connection(session: Session, settings: Settings, connection: DatabaseConnection) -> DatabaseConnection:
    """Connect, read one row of the named columns, record the outcome."""
    reason = sources.probe_source(spec_of(connection, settings))
    connection.status = "connected" if reason is None else "failed"
    connection.last_error = reason
    connection.last_checked_at = utcnow()
    session.flush()
    return connection


# --- streams -------------------------------------------------------------------------


def start_stream(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, body: StreamStart) -> PredictionStream:
    model = get_model(session, body.model_id, workspace_id)
    service.servable_version(session, model, None)  # 409 for a model with nothing to serve
    connection = get_connection(session, body.database_id, workspace_id)
    if body.pipeline_id is not None:
        get_pipeline(session, body.pipeline_id, workspace_id)  # 404 for one this workspace does not have
    if missing := sorted(set(model.config.get("exogenous") or []) - set(connection.exogenous_columns)):
        # Every run would fail for want of them.
        raise ModelNotServable(
            f"Model '{model.id}' forecasts from future values of {missing}, which source '{connection.id}' does not give",
            {"database_id": f"register the source with exogenous_columns {missing}, its rows ahead holding their future values"},
        )
    if body.horizon is not None and body.horizon > (most := int(model.config.get("horizon", 1))):
        # Every run would be refused.
        raise InvalidPredictionRequest(
            f"Model '{model.id}' forecasts at most {most} steps", {"horizon": f"at most {most}, the model's horizon; train it with a longer horizon for more"}
        )
    stream = PredictionStream(
        workspace_id=workspace_id,
        model_id=model.id,
        database_id=body.database_id,
        pipeline_id=body.pipeline_id,
        created_by=user_id,
        interval_seconds=float(body.interval_seconds),
        horizon=body.horizon or int(model.config.get("horizon", 1)),
        status="running",
    )
    session.add(stream)
    session.flush()
    return stream


def get_stream(session: Session, stream_id: uuid.UUID, workspace_id: uuid.UUID) -> PredictionStream:
    return get_scoped(session, PredictionStream, stream_id, workspace_id, StreamNotFound)


def list_streams(session: Session, workspace_id: uuid.UUID, status: str | None) -> list[PredictionStream]:
    stmt = select(PredictionStream).where(PredictionStream.workspace_id == workspace_id)
    if status is not None:
        stmt = stmt.where(PredictionStream.status == status)
    return list(session.scalars(stmt.order_by(PredictionStream.created_at.desc())))


def stop_stream(session: Session, stream: PredictionStream) -> PredictionStream:
    if stream.status != "running":
        raise StreamNotRunning(f"Stream '{stream.id}' is {stream.status}", {"status": stream.status})
    stream.status, stream.stopped_at = "stopped", utcnow()
    session.flush()
    return stream


def run_due_streams(database: Database, store: ArtifactStore, settings: Settings) -> int:
    """Runs every running stream whose interval has passed; how many ran."""
    now = utcnow()
    running = database.read(_running_streams())
    ran = 0
    for stream_id, interval, last_run in running:
        if last_run is not None and now - last_run < timedelta(seconds=interval):
            continue
        if _claim(database, stream_id, last_run, now):
            run_stream_once(database, store, settings, stream_id)
            ran += 1
    return ran


@cache
def _running_streams() -> Select[Any]:
    """Built once (a Core query on the table's columns): the scheduler asks twice a second."""
    streams = PredictionStream.__table__.c
    return select(streams.id, streams.interval_seconds, streams.last_run_at).where(streams.status == "running")


def _claim(database: Database, stream_id: uuid.UUID, seen: datetime | None, now: datetime) -> bool:
    """This process takes the run when `last_run_at` is still what it read."""
    with database.session() as session:
        unchanged = PredictionStream.last_run_at.is_(None) if seen is None else PredictionStream.last_run_at == seen
        claimed = session.execute(update(PredictionStream).where(PredictionStream.id == stream_id, unchanged).values(last_run_at=now))
        return claimed.rowcount == 1


def run_stream_once(database: Database, store: ArtifactStore, settings: Settings, stream_id: uuid.UUID) -> None:
    """One read-predict-push; a failure is counted on the stream, never raised. The source
    is read with no transaction open on the stream, so a stop request never waits for a
    slow source (whose reads are time-limited too: sources.SOURCE_QUERY_SECONDS)."""
    workspace_id = None  # on the failure's log record: the workspace's members may read it
    try:
        with database.session() as session:
            stream = session.get(PredictionStream, stream_id)
            if stream is None or stream.status != "running":
                return
            workspace_id, cursor = str(stream.workspace_id), stream.last_timestamp
            spec, trained_until, exogenous = _source_of(session, store, settings, stream)
        read = _read(spec, trained_until, cursor.replace(tzinfo=None) if cursor else None, exogenous)
        with database.session() as session:
            stream = session.get(PredictionStream, stream_id, with_for_update=True)
            # Stopped meanwhile, or another run moved the cursor: what was read is stale.
            if stream is None or stream.status != "running" or stream.last_timestamp != cursor:
                return
            stream.consecutive_failures, stream.last_error = 0, _tick(session, store, stream, read)
    except Exception as exc:  # the source went away, the model was retrained badly...: recorded, retried next interval
        log.warning("stream_run_failed", stream_id=str(stream_id), workspace_id=workspace_id, error=repr(exc))
        with database.session() as session:
            stream = session.get(PredictionStream, stream_id, with_for_update=True)
            if stream is not None:
                stream.consecutive_failures += 1
                stream.last_error = _described(exc)
                if stream.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    stream.status, stream.stopped_at = "failed", utcnow()


def _described(exc: Exception) -> str:
    """A failure as the stream keeps it: a refusal with its details (which say why)."""
    if not isinstance(exc, VurError):
        return str(exc)[:1000]
    details = [f"{field}: {problem}" for field, problem in exc.details.items() if str(problem) not in exc.message]
    return "; ".join([exc.message, *details])[:1000]


def _source_of(session: Session, store: ArtifactStore, settings: Settings, stream: PredictionStream) -> tuple[sources.SourceSpec, datetime, bool]:
    """The stream's source, where the model's training history ends (naive UTC, like the
    source's times) and whether the model reads future exogenous values."""
    model = session.get(RegisteredModel, stream.model_id)
    connection = session.get(DatabaseConnection, stream.database_id)
    assert model is not None and connection is not None  # both cascade-delete the stream
    _, forecaster = service.fitted_model(store, model, service.servable_version(session, model, None))
    trained_until = forecaster.history.groupby("unique_id")["ds"].max().min().to_pydatetime()
    return spec_of(connection, settings), trained_until, bool(forecaster.exogenous)  # decrypts the URL: once per run


@dataclass(frozen=True)
class _Read:
    rows: list[sources.SourceRow]  # since the end of training, oldest first
    ahead: list[sources.FutureRow]
    trained_until: datetime
    # The source holds more rows since training than a run reads: the oldest were left.
    cut: bool


def _read(spec: sources.SourceSpec, trained_until: datetime, cursor: datetime | None, exogenous: bool) -> _Read:
    engine = sources.open_engine(spec.url)
    try:
        rows = sources.read_rows(engine, spec, trained_until, limit=MAX_OBSERVATIONS + 1)
        cut, rows = len(rows) > MAX_OBSERVATIONS, rows[-MAX_OBSERVATIONS:]
        newest = rows[-1].timestamp if rows else None
        # The rows ahead are read only when there is something to forecast from.
        fresh = newest is not None and (cursor is None or newest > cursor)
        ahead = sources.read_future(engine, spec, newest, limit=MAX_OBSERVATIONS) if exogenous and fresh else []
    finally:
        engine.dispose()
    return _Read(rows, ahead, trained_until, cut)


def _tick(session: Session, store: ArtifactStore, stream: PredictionStream, read: _Read) -> str | None:
    """Predict from what a run read; what the stream waits for, when it could not predict yet."""
    model = session.get(RegisteredModel, stream.model_id)
    assert model is not None  # it cascade-deletes the stream
    # Source times are naive UTC, like the training data; the cursor is stored aware.
    cursor = stream.last_timestamp.replace(tzinfo=None) if stream.last_timestamp else None
    rows = read.rows
    newest = rows[-1].timestamp if rows else None
    if newest is None or (cursor is not None and newest <= cursor):
        return None
    arrived = sum(1 for row in rows if cursor is None or row.timestamp > cursor)
    # A source may hold a row twice (a correction appended): the later read wins, as a request may give each point once.
    observed = {(row.series_id, row.timestamp): row for row in rows}
    observations = [Observation(series_id=row.series_id, timestamp=row.timestamp, value=row.value) for row in observed.values()]
    planned = {(row.series_id, row.timestamp): known for row in read.ahead if (known := _known(row.values))}
    future = [FutureValues(series_id=series_id, timestamp=timestamp, values=known) for (series_id, timestamp), known in planned.items()] or None
    too_many = f"the source holds more than {MAX_OBSERVATIONS} rows since the model's training data ends ({read.trained_until.isoformat()}) and a run reads the newest {MAX_OBSERVATIONS}"
    try:
        answer = service.predict(session, store, model, PredictRequest(horizon=stream.horizon, observations=observations, exogenous=future), "stream")
    except InvalidPredictionRequest as exc:
        if isinstance(gap := exc.__cause__, MissingStep):
            if read.cut:  # the step is among the rows left unread, not missing
                raise InvalidPredictionRequest(f"{too_many}, which leaves the series a gap: retrain the model on newer data", exc.details) from exc
            # The cursor stays: the next run tries again once the missing row has arrived
            # (one that never does leaves the stream without new rows: the stalled alert).
            return f"waiting for missing rows: none for series {gap.series_id!r} at {gap.missing}"
        if set(exc.details) != {"exogenous"}:
            raise
        # The cursor stays: the next run tries again once the rows ahead are filled in.
        return f"waiting for future values: {exc.details['exogenous']}"[:1000]
    stream.last_timestamp, stream.last_new_rows_at = newest.replace(tzinfo=UTC), utcnow()
    stream.rows_read += arrived
    stream.predictions_made += 1
    data = {**answer, "stream_id": str(stream.id), "rows_arrived": arrived}
    publish_after_commit(session, Event("predictions", "prediction", data, str(stream.workspace_id)))
    if read.cut and (cursor is None or rows[0].timestamp > cursor):
        # Rows that arrived since the last run were never read: neither counted nor scored.
        log.warning("stream_rows_skipped", stream_id=str(stream.id), workspace_id=str(stream.workspace_id), reason=too_many)
        return f"rows skipped: {too_many}; the older ones that arrived since the last run were not read (retrain the model on newer data)"
    return None


def _known(values: dict[str, float | None]) -> dict[str, float]:
    """The filled-in cells of a row ahead; an empty one is a value still to come."""
    return {column: value for column, value in values.items() if value is not None and math.isfinite(value)}


def stream_scheduler(database: Database, store: ArtifactStore, settings: Settings) -> PeriodicTask:
    """The thread of an API process that runs due streams every `stream_poll_seconds`."""
    return PeriodicTask("vur-stream-scheduler", settings.stream_poll_seconds, lambda: run_due_streams(database, store, settings))
