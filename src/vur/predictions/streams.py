"""Database connections and prediction streams.

A stream is a row in `prediction_streams`; the stream scheduler thread of each API
process runs the due ones. A run reads the source's rows newer than the model's training
history, and when some arrived since the previous run it predicts from them (the
prediction service records the answer and scores earlier forecasts against the new
actual values), pushes the answer on the `predictions` topic and moves the cursor. A
model fitted with exogenous columns forecasts from the source's rows ahead (value still
empty, exogenous columns filled); until they cover the horizon, the run waits.
Taking a run is a compare-and-set on `last_run_at`, so several API processes never run
the same tick twice, and a restarted server carries on from the stored cursor.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vur.core.db import Database, utcnow
from vur.core.events import Event, publish_after_commit
from vur.core.periodic import PeriodicTask
from vur.core.repository import get_scoped
from vur.core.security import decrypt_secret, encrypt_secret
from vur.core.storage import ArtifactStore
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
        url = sources.checked_url(body.url, settings)
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
    with database.session() as session:
        running = session.execute(select(PredictionStream.id, PredictionStream.interval_seconds, PredictionStream.last_run_at).where(PredictionStream.status == "running")).all()
    ran = 0
    for stream_id, interval, last_run in running:
        if last_run is not None and now - last_run < timedelta(seconds=interval):
            continue
        if _claim(database, stream_id, last_run, now):
            run_stream_once(database, store, settings, stream_id)
            ran += 1
    return ran


def _claim(database: Database, stream_id: uuid.UUID, seen: datetime | None, now: datetime) -> bool:
    """This process takes the run when `last_run_at` is still what it read."""
    with database.session() as session:
        unchanged = PredictionStream.last_run_at.is_(None) if seen is None else PredictionStream.last_run_at == seen
        claimed = session.execute(update(PredictionStream).where(PredictionStream.id == stream_id, unchanged).values(last_run_at=now))
        return claimed.rowcount == 1


def run_stream_once(database: Database, store: ArtifactStore, settings: Settings, stream_id: uuid.UUID) -> None:
    """One read-predict-push; a failure is counted on the stream, never raised."""
    workspace_id = None  # on the failure's log record: the workspace's members may read it
    try:
        with database.session() as session:
            stream = session.get(PredictionStream, stream_id, with_for_update=True)
            if stream is None or stream.status != "running":
                return
            workspace_id = str(stream.workspace_id)
            stream.consecutive_failures, stream.last_error = 0, _tick(session, store, settings, stream)
    except Exception as exc:  # the source went away, the model was retrained badly...: recorded, retried next interval
        log.warning("stream_run_failed", stream_id=str(stream_id), workspace_id=workspace_id, error=repr(exc))
        with database.session() as session:
            stream = session.get(PredictionStream, stream_id, with_for_update=True)
            if stream is not None:
                stream.consecutive_failures += 1
                stream.last_error = getattr(exc, "message", None) or str(exc)[:1000]
                if stream.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    stream.status, stream.stopped_at = "failed", utcnow()


def _tick(session: Session, store: ArtifactStore, settings: Settings, stream: PredictionStream) -> str | None:
    """One run; what the stream waits for, when it could not predict yet."""
    model = session.get(RegisteredModel, stream.model_id)
    connection = session.get(DatabaseConnection, stream.database_id)
    assert model is not None and connection is not None  # both cascade-delete the stream
    version = service.servable_version(session, model, None)
    _, forecaster = service.fitted_model(store, model, version)
    trained_until = forecaster.history.groupby("unique_id")["ds"].max().min().to_pydatetime()
    # Source times are naive UTC, like the training data; the cursor is stored aware.
    cursor = stream.last_timestamp.replace(tzinfo=None) if stream.last_timestamp else None
    spec = spec_of(connection, settings)  # decrypts the URL: once per run
    engine = sources.open_engine(spec.url)
    try:
        rows = sources.read_rows(engine, spec, trained_until, limit=MAX_OBSERVATIONS)
        newest = rows[-1].timestamp if rows else None
        if newest is None or (cursor is not None and newest <= cursor):
            return None
        # The rows ahead are read only when there is something to forecast from.
        ahead = sources.read_future(engine, spec, newest, limit=MAX_OBSERVATIONS) if forecaster.exogenous else []
    finally:
        engine.dispose()
    arrived = sum(1 for row in rows if cursor is None or row.timestamp > cursor)
    observations = [Observation(series_id=row.series_id, timestamp=row.timestamp, value=row.value) for row in rows]
    future = [FutureValues(series_id=row.series_id, timestamp=row.timestamp, values=known) for row in ahead if (known := _known(row.values))] or None
    try:
        answer = service.predict(session, store, model, PredictRequest(horizon=stream.horizon, observations=observations, exogenous=future), "stream")
    except InvalidPredictionRequest as exc:
        if set(exc.details) != {"exogenous"}:
            raise
        # The cursor stays: the next run tries again once the rows ahead are filled in.
        return f"waiting for future values: {exc.details['exogenous']}"[:1000]
    stream.last_timestamp, stream.last_new_rows_at = newest.replace(tzinfo=UTC), utcnow()
    stream.rows_read += arrived
    stream.predictions_made += 1
    data = {**answer.model_dump(mode="json"), "stream_id": str(stream.id), "rows_arrived": arrived}
    publish_after_commit(session, Event("predictions", "prediction", data, str(stream.workspace_id)))
    return None


def _known(values: dict[str, float | None]) -> dict[str, float]:
    """The filled-in cells of a row ahead; an empty one is a value still to come."""
    return {column: value for column, value in values.items() if value is not None and math.isfinite(value)}


def stream_scheduler(database: Database, store: ArtifactStore, settings: Settings) -> PeriodicTask:
    """The thread of an API process that runs due streams every `stream_poll_seconds`."""
    return PeriodicTask("vur-stream-scheduler", settings.stream_poll_seconds, lambda: run_due_streams(database, store, settings))
