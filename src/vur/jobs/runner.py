"""Runs jobs: a loop that claims queued jobs from the jobs table and executes them in a
pool of worker processes, so CPU-heavy work never blocks the API's event loop.

The same `Worker` runs inside the API process (the embedded default, in a thread) and
as `vur worker` (a separate process, any number of them, on any machine that reaches
the database). The parent process sends heartbeats for the jobs it runs; a job whose
heartbeat goes stale is failed or re-queued by `service.sweep_stale`, which every
worker calls at start and then periodically.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from typing import Any

import structlog
import vur.models  # noqa: F401  (every table, so foreign keys resolve in worker processes)
from vur.core.db import get_database
from vur.core.events import Event, bus, publish_after_commit
from vur.jobs import service
from vur.jobs.models import Job, JobStatus
from vur.jobs.registry import get_spec, load_job_modules
from vur.settings import Settings

log = structlog.get_logger("vur.jobs")


class JobCancelled(Exception):
    pass


class WorkerGone(BaseException):
    """The runner that owns this process died; stop without touching the job row."""


class JobContext:
    """What a job function receives: progress reporting, logging, events, cancellation."""

    def __init__(self, job: Job, settings: Settings, parent_pid: int) -> None:
        self.job_id = job.id
        self.workspace_id = job.workspace_id
        self.settings = settings
        self._database = get_database(settings.resolved_database_url)
        self._parent_pid = parent_pid
        self._log_lines = settings.job_log_lines

    def progress(self, percent: float, message: str | None = None, **data: Any) -> None:
        """Record progress (0-100) and an optional log line, publish it, and stop the
        job if it was cancelled meanwhile."""
        if os.getppid() != self._parent_pid:
            raise WorkerGone()
        with self._database.session() as session:
            job = session.get(Job, self.job_id, with_for_update=True)
            if job is None:
                raise JobCancelled("job row deleted")
            job.progress = max(0.0, min(100.0, float(percent)))
            if message:
                job.log = [*job.log, message][-self._log_lines :]
            cancel = job.cancel_requested
            event = service.job_event(job, "job.progress")
            event.data.update(message=message, **data)
            publish_after_commit(session, event)
        if cancel:
            raise JobCancelled()

    def log(self, message: str) -> None:
        with self._database.session() as session:
            job = session.get(Job, self.job_id, with_for_update=True)
            if job is not None:
                job.log = [*job.log, message][-self._log_lines :]

    def publish(self, topic: str, type_: str, data: dict[str, Any]) -> None:
        bus.publish(Event(topic=topic, type=type_, data=data, workspace_id=str(self.workspace_id) if self.workspace_id else None))


# --- the child-process side -------------------------------------------------

_child_parent_pid = 0
_child_settings: Settings | None = None


def _init_child(event_queue: Any, parent_pid: int, settings_json: str) -> None:
    global _child_parent_pid, _child_settings
    _child_parent_pid = parent_pid
    _child_settings = Settings.model_validate_json(settings_json)
    # numba (statsforecast) compiles on first use; a cache makes that once per machine.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_child_settings.data_dir / "cache" / "numba"))
    bus.forward_to(event_queue.put)
    from vur.core.logging import configure_logging

    configure_logging(_child_settings.log_level, _child_settings.log_json)
    load_job_modules(_child_settings.job_modules)


def execute_job(job_id: uuid.UUID) -> None:
    """Runs one claimed job to a final status, in a worker process."""
    settings = _child_settings
    assert settings is not None, "execute_job runs only in processes started by a Worker"
    database = get_database(settings.resolved_database_url)
    with database.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.running:
            return
        spec = get_spec(job.type)
        payload = dict(job.payload)
        context = JobContext(job, settings, _child_parent_pid)
    structlog.contextvars.bind_contextvars(job_id=str(job_id), job_type=job.type)
    try:
        if spec is None:
            raise LookupError(f"no job type {job.type!r} is registered in this worker")
        result = spec.func(context, **payload) or {}
        final, fields = JobStatus.succeeded, {"result": result}
    except JobCancelled:
        final, fields = JobStatus.cancelled, {"error": "Cancelled by request"}
    except WorkerGone:
        return
    except Exception as exc:  # a job's failure is recorded, never raised into the pool
        log.warning("job_failed", error=repr(exc), traceback=traceback.format_exc())
        final, fields = JobStatus.failed, {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "job_type")
    with database.session() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status == JobStatus.running:
            service.transition(session, job, final, **fields)


# --- the parent side --------------------------------------------------------


class Worker:
    def __init__(self, settings: Settings, *, processes: int | None = None, name: str | None = None) -> None:
        self.settings = settings
        self.processes = max(1, processes or settings.job_processes)
        self.worker_id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.database = get_database(settings.resolved_database_url)
        self._stop = threading.Event()
        self._running: dict[uuid.UUID, Future[None]] = {}
        self._events: Any = None
        self._pool: ProcessPoolExecutor | None = None
        self._threads: list[threading.Thread] = []

    # lifecycle

    def start_in_background(self) -> None:
        self._threads = [
            threading.Thread(target=self.run, name="vur-job-runner", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        service.jobs_available.set()
        for thread in self._threads:
            thread.join(timeout)

    @property
    def state(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "alive": any(t.is_alive() for t in self._threads) if self._threads else not self._stop.is_set(),
            "processes": self.processes,
            "running_jobs": len(self._running),
        }

    def run(self) -> None:
        load_job_modules(self.settings.job_modules)
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        drain = threading.Thread(target=self._drain_events, name="vur-job-events", daemon=True)
        drain.start()
        self._pool = self._new_pool(context)
        log.info("worker_started", worker_id=self.worker_id, processes=self.processes)
        next_sweep = next_heartbeat = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep()
                    next_sweep = now + min(self.settings.job_stale_after_seconds / 2, 10.0)
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = now + self.settings.job_heartbeat_seconds
                self._reap(context)
                while len(self._running) < self.processes and not self._stop.is_set():
                    if not self._claim_and_submit():
                        break
                service.jobs_available.wait(timeout=0.5)
                service.jobs_available.clear()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._events.put(None)
            drain.join(2)
            log.info("worker_stopped", worker_id=self.worker_id)

    def _new_pool(self, context: Any) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=context,
            initializer=_init_child,
            initargs=(self._events, os.getpid(), self.settings.model_dump_json()),
        )

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=1)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            if event is None:
                return
            bus.publish(event)

    def _claim_and_submit(self) -> bool:
        with self.database.session() as session:
            job = service.claim_next(session, self.worker_id)
            if job is None:
                return False
            job_id = job.id
        assert self._pool is not None
        log.info("job_claimed", job_id=str(job_id), worker_id=self.worker_id)
        self._running[job_id] = self._pool.submit(execute_job, job_id)
        return True

    def _reap(self, context: Any) -> None:
        broken = False
        for job_id, future in list(self._running.items()):
            if not future.done():
                continue
            del self._running[job_id]
            error = future.exception()
            if error is None:
                continue
            broken = broken or isinstance(error, BrokenProcessPool)
            with self.database.session() as session:
                job = session.get(Job, job_id, with_for_update=True)
                if job is not None and job.status == JobStatus.running:
                    service.transition(session, job, JobStatus.failed, error=f"The worker process running this job crashed: {error!r}")
        if broken:
            assert self._pool is not None
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool(context)

    def _heartbeat(self) -> None:
        with self.database.session() as session:
            service.heartbeat(session, self.worker_id, list(self._running))

    def _sweep(self) -> None:
        with self.database.session() as session:
            swept = service.sweep_stale(session, timedelta(seconds=self.settings.job_stale_after_seconds))
        for job in swept:
            log.warning("job_stale", job_id=str(job.id), status=job.status.value, worker_id=job.worker_id)
