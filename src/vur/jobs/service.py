"""The job state machine and the queue operations on the jobs table.

Every status change goes through `transition`, used alike by runners, cancellation
and the stale-heartbeat sweeper. The jobs table is the queue: a job enqueued in a
request becomes visible to runners only when that request's transaction commits.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from vur.core.db import Database, utcnow
from vur.core.events import Event, publish_after_commit
from vur.core.repository import get_scoped, paginate
from vur.jobs.exceptions import IllegalTransition, JobAlreadyFinished, JobNotFound
from vur.jobs.models import TERMINAL, Job, JobStatus
from vur.jobs.registry import get_spec

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.queued: frozenset({JobStatus.running, JobStatus.cancelled}),
    JobStatus.running: frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.queued}),
}

# Log lines kept on a job row by the sweeper (workers use `settings.job_log_lines`).
LOG_LINES = 200

# Set after a commit that enqueued jobs, so an in-process runner wakes at once.
jobs_available = threading.Event()
_ENQUEUED = "vur_jobs_enqueued"


def job_event(job: Job, type_: str) -> Event:
    data = {
        "job_id": str(job.id),
        "type": job.type,
        "status": job.status.value,
        "progress": job.progress,
        "error": job.error,
        "result": job.result if job.status == JobStatus.succeeded else None,
    }
    return Event(topic=f"job:{job.id}", type=type_, data=data, workspace_id=str(job.workspace_id) if job.workspace_id else None)


def enqueue(
    session: Session,
    type_: str,
    payload: dict[str, Any],
    *,
    workspace_id: uuid.UUID | None,
    created_by: uuid.UUID | None = None,
) -> Job:
    spec = get_spec(type_)
    if spec is None:
        raise ValueError(f"unknown job type {type_!r}")
    job = Job(
        type=type_,
        payload=payload,
        workspace_id=workspace_id,
        created_by=created_by,
        max_attempts=spec.max_attempts,
        status=JobStatus.queued,
        progress=0.0,
        log=[],
    )
    session.add(job)
    session.flush()
    session.info[_ENQUEUED] = True
    publish_after_commit(session, job_event(job, "job.queued"))
    return job


def transition(session: Session, job: Job, to: JobStatus, **fields: Any) -> Job:
    if to not in ALLOWED.get(job.status, frozenset()):
        raise IllegalTransition(f"job {job.id}: {job.status.value} -> {to.value}")
    now = utcnow()
    job.status = to
    if to == JobStatus.running:
        job.started_at = now
        job.heartbeat_at = now
    elif to == JobStatus.queued:
        job.worker_id = None
        job.heartbeat_at = None
    else:
        job.finished_at = now
    if to == JobStatus.succeeded:
        job.progress = 100.0
    for name, value in fields.items():
        setattr(job, name, value)
    if to in (JobStatus.failed, JobStatus.cancelled) and (spec := get_spec(job.type)) and spec.on_unsuccessful:
        spec.on_unsuccessful(session, job)
    session.flush()
    publish_after_commit(session, job_event(job, f"job.{to.value}"))
    return job


def get_job(session: Session, job_id: uuid.UUID, workspace_id: uuid.UUID) -> Job:
    return get_scoped(session, Job, job_id, workspace_id, JobNotFound)


def job_in_workspace(session: Session, workspace_id: uuid.UUID, job_id: uuid.UUID) -> bool:
    return session.scalar(select(Job.id).where(Job.id == job_id, Job.workspace_id == workspace_id)) is not None


def list_jobs(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    status: JobStatus | None = None,
    type_: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    stmt = select(Job).where(Job.workspace_id == workspace_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if type_ is not None:
        stmt = stmt.where(Job.type == type_)
    return paginate(session, stmt.order_by(Job.created_at.desc()), limit=limit, offset=offset)


def request_cancel(session: Session, job: Job) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop and its
    runner finishes the transition when the job next reports progress."""
    if job.status in TERMINAL:
        raise JobAlreadyFinished(f"Job '{job.id}' already {job.status.value}", {"status": job.status.value})
    if job.status == JobStatus.queued:
        return transition(session, job, JobStatus.cancelled, error="Cancelled before it started")
    job.cancel_requested = True
    session.flush()
    publish_after_commit(session, job_event(job, "job.cancel_requested"))
    return job


def any_queued(database: Database) -> bool:
    """Whether a job waits, asked without a session: a worker asks twice a second, and
    claims (`claim_next`) only when one does."""
    return bool(database.read(_queued_job()))


@cache
def _queued_job() -> Select[Any]:
    jobs = Job.__table__.c
    return select(jobs.id).where(jobs.status == JobStatus.queued).limit(1)


def claim_next(session: Session, worker_id: str, types: set[str] | None = None) -> Job | None:
    """Atomically move the oldest queued job to running for this worker.

    The guarded UPDATE (`WHERE status = 'queued'`) is what makes two workers racing
    for the same row safe on SQLite and PostgreSQL alike: only one sees a row count of 1.
    """
    stmt = select(Job.id).where(Job.status == JobStatus.queued).order_by(Job.created_at).limit(5)
    if types is not None:
        stmt = stmt.where(Job.type.in_(types))
    for job_id in session.scalars(stmt).all():
        now = utcnow()
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued)
            .values(status=JobStatus.running, worker_id=worker_id, started_at=now, heartbeat_at=now, attempts=Job.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            job = session.get(Job, job_id, populate_existing=True)
            assert job is not None
            publish_after_commit(session, job_event(job, "job.running"))
            return job
    return None


def heartbeat(session: Session, worker_id: str, job_ids: list[uuid.UUID]) -> None:
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == JobStatus.running)
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def abandon(session: Session, job: Job, why: str) -> Job:
    """A running job whose run ended without finishing it (its worker died, shut down or
    lost its process): re-queue what is safe to retry, fail the rest with an error that
    says what happened. A job that was asked to cancel ends cancelled."""
    spec = get_spec(job.type)
    if job.cancel_requested:
        return transition(session, job, JobStatus.cancelled, error=f"Cancelled by request ({why})")
    if spec is not None and spec.retry_safe and job.attempts < job.max_attempts:
        session.info[_ENQUEUED] = True  # wakes in-process runners once committed
        return transition(session, job, JobStatus.queued, progress=0.0, log=[*job.log, f"{why}; re-queued"][-LOG_LINES:])
    outcome = f"gave up after {job.attempts} attempts" if spec is not None and spec.retry_safe else "the job was not safe to retry"
    return transition(session, job, JobStatus.failed, error=f"{why}; {outcome}")


def sweep_stale(session: Session, stale_after: timedelta, now: datetime | None = None) -> list[Job]:
    """Jobs whose worker stopped sending heartbeats: re-queue what is safe to retry,
    fail the rest with an error that says what happened."""
    cutoff = (now or utcnow()) - stale_after
    stale = session.scalars(
        select(Job).where(Job.status == JobStatus.running, Job.heartbeat_at < cutoff).with_for_update(skip_locked=True)
    ).all()
    for job in stale:
        last_seen = job.heartbeat_at.isoformat() if job.heartbeat_at else "never"
        abandon(session, job, f"Worker {job.worker_id} stopped responding (last heartbeat {last_seen})")
    return list(stale)


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    counts = {status.value: 0 for status in JobStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


@sa_event.listens_for(Session, "after_commit")
def _wake_runners(session: Session) -> None:
    if session.info.pop(_ENQUEUED, False):
        jobs_available.set()


@sa_event.listens_for(Session, "after_rollback")
def _forget_enqueued(session: Session) -> None:
    session.info.pop(_ENQUEUED, None)
