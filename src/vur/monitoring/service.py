"""What the monitoring page shows: component health, this process's recent log records
(its embedded runner's job processes' too), and each model's validation metrics beside
its live figures from predictions."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from vur.core import redis_events
from vur.core.db import Database, utcnow
from vur.core.storage import ArtifactStore
from vur.jobs.models import Job
from vur.monitoring.schemas import (
    ComponentHealth,
    DatabaseHealth,
    HealthComponents,
    HealthReport,
    JobRunnerHealth,
    LiveError,
    LogLevel,
    LogRecord,
    ModelMonitor,
    StorageHealth,
)
from vur.pipelines import service as pipelines_service
from vur.predictions.models import Prediction, PredictionStream
from vur.predictions.service import error_from_sums
from vur.registry import service as registry_service
from vur.registry.models import ModelVersion, RegisteredModel
from vur.settings import Settings

if TYPE_CHECKING:
    from vur.jobs.runner import Worker

# --- health -----------------------------------------------------------------


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_database(database: Database) -> DatabaseHealth:
    backend = database.engine.dialect.name
    started = time.perf_counter()
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # a failed probe is reported, not raised
        return DatabaseHealth(status="unhealthy", detail=_describe(exc), backend=backend, latency_ms=None)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return DatabaseHealth(status="healthy", detail="SELECT 1 answered", backend=backend, latency_ms=latency_ms)


def check_storage(store: ArtifactStore, root: Path) -> StorageHealth:
    try:
        if not root.is_dir():
            raise FileNotFoundError(f"the artifact directory {root} does not exist")
        store.check()  # writes and deletes a probe file
        free_bytes = shutil.disk_usage(root).free
    except Exception as exc:  # a failed probe is reported, not raised
        return StorageHealth(status="unhealthy", detail=_describe(exc), root=str(root), free_bytes=None)
    return StorageHealth(status="healthy", detail="writable", root=str(root), free_bytes=free_bytes)


def check_job_runner(session: Session, settings: Settings, worker: Worker | None) -> JobRunnerHealth:
    if settings.job_runner == "external":
        return _external_runner(session, settings)
    if worker is None:
        return JobRunnerHealth(
            status="unhealthy", detail="the in-process runner has not started", mode="inprocess", alive=False, processes=None, running_jobs=None, last_heartbeat_at=None
        )
    state = worker.state
    return JobRunnerHealth(
        status="healthy" if state["alive"] else "unhealthy",
        detail="in-process runner alive" if state["alive"] else "the in-process runner has stopped",
        mode="inprocess",
        alive=state["alive"],
        processes=state["processes"],
        running_jobs=state["running_jobs"],
        last_heartbeat_at=None,
    )


def _external_runner(session: Session, settings: Settings) -> JobRunnerHealth:
    """External workers heartbeat only the jobs they run: a recent heartbeat proves one is
    alive, an old one (or none) proves nothing either way, since an idle worker sends none."""
    latest = session.execute(select(Job.heartbeat_at, Job.worker_id).where(Job.heartbeat_at.is_not(None)).order_by(Job.heartbeat_at.desc()).limit(1)).first()
    if latest is None:
        return JobRunnerHealth(
            status="unknown", detail="external, no heartbeat yet", mode="external", alive=None, processes=None, running_jobs=None, last_heartbeat_at=None
        )
    age = (utcnow() - latest.heartbeat_at).total_seconds()
    recent = age <= settings.job_stale_after_seconds
    return JobRunnerHealth(
        status="healthy" if recent else "unknown",
        detail=f"external; worker {latest.worker_id} sent the latest heartbeat {age:.0f} s ago",
        mode="external",
        alive=None,
        processes=None,
        running_jobs=None,
        last_heartbeat_at=latest.heartbeat_at,
    )


def check_redis(settings: Settings) -> ComponentHealth:
    """Redis carries the events between processes when `VUR_REDIS_URL` is set; without
    it live updates stop crossing processes, but nothing else fails: degraded."""
    if not settings.redis_url:
        return ComponentHealth(status="not_configured", detail="no Redis URL is configured (events between processes go through the database outbox)")
    try:
        latency = redis_events.ping(settings.redis_url)
    except Exception as exc:  # any connection or protocol failure is the answer
        return ComponentHealth(status="degraded", detail=f"Redis does not answer: {type(exc).__name__}: {str(exc)[:200]}")
    return ComponentHealth(status="healthy", detail=f"PING answered in {latency:.1f} ms; events between processes go through Redis pub/sub")


def health_report(components: HealthComponents) -> HealthReport:
    # Without the database and storage nothing works; any other failure only degrades.
    required = (components.database, components.storage)
    every: tuple[ComponentHealth, ...] = (*required, components.job_runner, components.redis)
    if any(component.status == "unhealthy" for component in required):
        overall = "unhealthy"
    elif any(component.status in ("degraded", "unhealthy") for component in every):
        overall = "degraded"
    else:
        overall = "healthy"
    return HealthReport(status=overall, checked_at=utcnow(), components=components)


# --- logs -------------------------------------------------------------------

LEVEL_RANK = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_NAMED_KEYS = ("timestamp", "level", "event", "logger", "request_id")


def _aware_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _matches_text(record: dict[str, Any], needle: str) -> bool:
    return any(needle in str(value).lower() for key, value in record.items() if key not in ("timestamp", "level"))


def recent_logs(
    records: list[dict[str, Any]],
    *,
    workspace_id: str | None,
    level: LogLevel | None,
    since: datetime | None,
    until: datetime | None,
    contains: str | None,
    limit: int,
) -> tuple[list[LogRecord], int]:
    """`records` oldest first, as the ring keeps them; the matches newest first, at most
    `limit` of them, and how many matched in all. `since` is inclusive, `until` not.
    With `workspace_id`, only the records about that workspace (None: every record)."""
    min_rank = LEVEL_RANK[level] if level else 0
    since_utc = _aware_utc(since) if since else None
    until_utc = _aware_utc(until) if until else None
    needle = contains.lower() if contains else None
    matched: list[LogRecord] = []
    total = 0
    for record in reversed(records):
        if workspace_id is not None and record.get("workspace_id") != workspace_id:
            continue
        if LEVEL_RANK.get(record["level"], 0) < min_rank:
            continue
        stamp = datetime.fromisoformat(record["timestamp"])
        if (since_utc and stamp < since_utc) or (until_utc and stamp >= until_utc):
            continue
        if needle and not _matches_text(record, needle):
            continue
        total += 1
        if len(matched) < limit:
            matched.append(_log_record(record, stamp))
    return matched, total


def _log_record(record: dict[str, Any], stamp: datetime) -> LogRecord:
    return LogRecord(
        timestamp=stamp,
        level=record["level"],
        event=str(record.get("event", "")),
        logger=record.get("logger"),
        request_id=record.get("request_id"),
        fields={key: value for key, value in record.items() if key not in _NAMED_KEYS},
    )


# --- models -----------------------------------------------------------------

LIVE_WINDOW = timedelta(hours=24)


def model_overview(session: Session, workspace_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[ModelMonitor], int]:
    """One query per figure group for the whole page, never one per model."""
    models, total = registry_service.list_models(session, workspace_id, kind=None, limit=limit, offset=offset)
    ids = [model.id for model in models]
    latest = _latest_versions(session, ids)
    live = _live_figures(session, workspace_id, ids)
    return [_monitor(model, latest.get(model.id), live.get(model.id)) for model in models], total


def _latest_versions(session: Session, model_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(select(ModelVersion.model_id, func.max(ModelVersion.number)).where(ModelVersion.model_id.in_(model_ids)).group_by(ModelVersion.model_id))
    return {model_id: number for model_id, number in rows}


def _live_figures(session: Session, workspace_id: uuid.UUID, model_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    recent = Prediction.created_at >= utcnow() - LIVE_WINDOW
    stmt = (
        select(
            Prediction.model_id,
            func.sum(case((recent, 1), else_=0)).label("last_24h"),
            func.max(Prediction.created_at).label("last_at"),
            func.sum(Prediction.scored_points).label("scored_points"),
            func.sum(Prediction.absolute_error_sum).label("absolute_error_sum"),
            func.sum(Prediction.squared_error_sum).label("squared_error_sum"),
        )
        .where(Prediction.workspace_id == workspace_id, Prediction.model_id.in_(model_ids))
        .group_by(Prediction.model_id)
    )
    return {row.model_id: row for row in session.execute(stmt)}


def _monitor(model: RegisteredModel, latest_version: int | None, live: Any) -> ModelMonitor:
    scored = int(live.scored_points or 0) if live else 0
    mae, rmse = error_from_sums(scored, live.absolute_error_sum, live.squared_error_sum) if live else (None, None)
    return ModelMonitor(
        id=model.id,
        name=model.name,
        kind=model.kind,
        status=model.status,
        algorithm=model.algorithm,
        latest_version=latest_version,
        metrics=model.metrics,
        trained_at=model.trained_at,
        predictions_24h=int(live.last_24h or 0) if live else 0,
        last_prediction_at=live.last_at if live else None,
        live_error=LiveError(scored_points=scored, mae=mae, rmse=rmse),
    )


# --- pipelines ---------------------------------------------------------------


def pipeline_overview(session: Session, workspace_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Each pipeline's progress beside its latest run and its live streams: one query each."""
    pipelines, total = pipelines_service.list_pipelines(session, workspace_id, status=None, limit=limit, offset=offset)
    job_ids = [p.last_job_id for p in pipelines if p.last_job_id]
    runs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))} if job_ids else {}
    streams = dict(
        session.execute(
            select(PredictionStream.pipeline_id, func.count())
            .where(PredictionStream.workspace_id == workspace_id, PredictionStream.status == "running", PredictionStream.pipeline_id.in_([p.id for p in pipelines]))
            .group_by(PredictionStream.pipeline_id)
        ).all()
    )
    overview = []
    for pipeline in pipelines:
        run = runs.get(pipeline.last_job_id) if pipeline.last_job_id else None
        overview.append(
            {
                "id": pipeline.id,
                "name": pipeline.name,
                "status": pipeline.status.value,
                "current_step": pipeline.current_step,
                "completed_steps": len(pipeline.completed_steps),
                "total_steps": len(pipeline.steps),
                "model_id": pipeline.model_id,
                "last_run": {"job_id": run.id, "status": run.status.value, "progress": run.progress, "finished_at": run.finished_at} if run else None,
                "running_streams": streams.get(pipeline.id, 0),
                "error": pipeline.error,
                "updated_at": pipeline.updated_at,
            }
        )
    return overview, total
