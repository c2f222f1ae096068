"""Runs jobs: a loop that claims queued jobs from the jobs table and executes them in a
pool of worker processes, so CPU-heavy work never blocks the API's event loop.

The same `Worker` runs inside the API process (the embedded default, in a thread) and
as `vur worker` (a separate process, any number of them, on any machine that reaches
the database). The parent process sends heartbeats for the jobs it runs; a job whose
heartbeat goes stale is failed or re-queued by `service.sweep_stale`, which every
worker calls at start and then periodically.

Job processes talk to the parent over one bounded queue: events for the bus, and, when
the parent is the API process (the embedded runner, `forward_telemetry`), the log records
they keep and what their relayed counters gained, so that `/api/v1/monitoring/logs` and
`/metrics` of the API cover its jobs too. A job never waits on the queue: when it is full
(the parent is not draining it) messages are dropped and counted, and counter reports
are carried by the next one.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import socket
import sys
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
from vur.core.foreground import wait_for_quiet
from vur.core.logging import ForwardedRecord, configure_logging, forward_records_to, keep_forwarded
from vur.core.metrics import CounterDeltas, CounterReporter, add_counter_deltas, relayed_counter
from vur.jobs import service
from vur.jobs.models import Job, JobStatus
from vur.jobs.registry import get_spec, load_job_modules
from vur.settings import Settings

log = structlog.get_logger("vur.jobs")

# Messages from job processes not yet taken by the parent; past this, more are dropped.
QUEUE_SIZE = 10_000
# How often a job process reports its relayed counters (and once more after each job).
COUNTER_REPORT_SECONDS = 1.0
MESSAGES_DROPPED = relayed_counter(
    "vur_job_messages_dropped_total", "Messages of job processes to their runner dropped because its queue was full", ["kind"]
)


class JobCancelled(Exception):
    pass


class WorkerGone(BaseException):
    """The runner that owns this process died; stop without touching the job row."""


class ClaimLost(WorkerGone):
    """The job row is no longer this run's: the stale-heartbeat sweeper failed it or gave
    it to another worker (a new attempt). Stop without touching the row."""


class JobContext:
    """What a job function receives: progress reporting, logging, events, cancellation."""

    def __init__(self, job: Job, settings: Settings, parent_pid: int) -> None:
        self.job_id = job.id
        self.workspace_id = job.workspace_id
        # The claim this run holds: a re-queued and re-claimed job has a new attempt number.
        self.attempt = job.attempts
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
            job = self._own_row(session)
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
            job = self._own_row(session)
            job.log = [*job.log, message][-self._log_lines :]

    def _own_row(self, session: Any) -> Job:
        job = session.get(Job, self.job_id, with_for_update=True)
        if job is None:
            raise JobCancelled("job row deleted")
        if job.status != JobStatus.running or job.attempts != self.attempt:
            raise ClaimLost()
        return job

    def publish(self, topic: str, type_: str, data: dict[str, Any]) -> None:
        bus.publish(Event(topic=topic, type=type_, data=data, workspace_id=str(self.workspace_id) if self.workspace_id else None))


# --- the child-process side -------------------------------------------------

_child_parent_pid = 0
_child_settings: Settings | None = None
_child_queue: Any = None
_child_counters: CounterReporter | None = None


ORPHAN_CHECK_SECONDS = 1.0


def _exit_when_orphaned(parent_pid: int) -> None:
    """A pool process whose runner was killed (SIGKILL, the OOM killer) would otherwise
    wait for work forever. Its job, if any, is left to the stale-heartbeat sweeper."""
    while True:
        time.sleep(ORPHAN_CHECK_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(70)


def offer(message_queue: Any, message: object, kind: str) -> bool:
    """Puts `message` on the queue to the parent without ever waiting: False (and counted)
    when the queue is full or gone."""
    try:
        message_queue.put_nowait(message)
        return True
    except (queue.Full, ValueError, OSError):  # ValueError: the queue was closed
        MESSAGES_DROPPED.labels(kind).inc()
        return False


def _send_event(event: Event) -> None:
    offer(_child_queue, event, "event")


def _send_record(record: ForwardedRecord) -> None:
    offer(_child_queue, record, "log")


def _report_counters() -> None:
    if _child_counters is None:
        return
    try:
        _child_counters.report(lambda deltas: offer(_child_queue, deltas, "metrics"))
    except Exception as exc:  # counting must never fail a job
        log.warning("counter_report_failed", error=repr(exc))


def _report_counters_periodically() -> None:
    while True:
        time.sleep(COUNTER_REPORT_SECONDS)
        _report_counters()


def _init_child(message_queue: Any, parent_pid: int, settings_json: str, forward_telemetry: bool = False) -> None:
    global _child_parent_pid, _child_settings, _child_queue, _child_counters
    _child_parent_pid = parent_pid
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="vur-orphan-watch", daemon=True).start()
    _child_settings = Settings.model_validate_json(settings_json)
    # numba (statsforecast) compiles on first use; a cache makes that once per machine.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_child_settings.data_dir / "cache" / "numba"))
    _child_queue = message_queue
    bus.forward_to(_send_event)
    configure_logging(_child_settings.log_level, _child_settings.log_json)
    if forward_telemetry:
        # The parent is the API process: its log ring and /metrics get this process's too.
        forward_records_to(_send_record)
        _child_counters = CounterReporter()
        threading.Thread(target=_report_counters_periodically, name="vur-counter-report", daemon=True).start()
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
        cancel_before_start = job.cancel_requested
    modules = len(sys.modules)
    structlog.contextvars.bind_contextvars(job_id=str(job_id), job_type=job.type, workspace_id=str(job.workspace_id) if job.workspace_id else None)
    try:
        if cancel_before_start:  # asked to stop while it was being claimed
            raise JobCancelled()
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
        # Users read the error: the server's own folders (a file error's path) are not theirs to see.
        error = f"{type(exc).__name__}: {exc}".replace(str(settings.data_dir.resolve()), "<data>").replace(str(settings.data_dir), "<data>")
        final, fields = JobStatus.failed, {"error": error}
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "job_type", "workspace_id")
        # Before the final status is written: a job read as finished has its counts on the way.
        _report_counters()
    with database.session() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status == JobStatus.running and job.attempts == context.attempt:
            service.transition(session, job, final, **fields)
    if len(sys.modules) > modules:
        _freeze_imported()


def _freeze_imported() -> None:
    """After a job that imported libraries (a forecasting job: pandas, statsforecast,
    numba… millions of objects): collect its garbage, then leave everything the process
    holds out of later collections. A full collection traverses every tracked object
    (0.2 s here once those libraries are loaded) and would otherwise strike at random
    inside later jobs, a whole short job's worth of time. Only after jobs that imported."""
    gc.collect()
    gc.freeze()


# --- the parent side --------------------------------------------------------


LOOP_ERROR_BACKOFF_SECONDS = 1.0


def _warm_up() -> int:
    time.sleep(0.2)  # keeps every process busy until all are started
    return os.getpid()


def _kill_pool_processes(pool: ProcessPoolExecutor) -> None:
    kill_workers = getattr(pool, "kill_workers", None)  # Python 3.14+
    if kill_workers is not None:
        kill_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.kill()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.join(5)


class Worker:
    """`stop()` ends the loop: no new jobs are claimed, running jobs get `drain_seconds`
    to finish (still heartbeating), then the job processes are killed and their jobs
    handed back (re-queued when retry-safe, failed otherwise). A second `stop()` skips
    what is left of the wait."""

    def __init__(
        self, settings: Settings, *, processes: int | None = None, name: str | None = None, drain_seconds: float = 5.0, forward_telemetry: bool = False
    ) -> None:
        """`forward_telemetry`: the job processes also send their log records and relayed
        counters, for this process's ring and /metrics (the API process's runner does; a
        `vur worker` serves neither, so its job processes keep theirs)."""
        self.settings = settings
        self.forward_telemetry = forward_telemetry
        self.processes = max(1, processes or settings.job_processes)
        self.worker_id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.database = get_database(settings.resolved_database_url)
        self.drain_seconds = drain_seconds
        self._stop = threading.Event()
        self._stop_now = threading.Event()
        self._running: dict[uuid.UUID, Future[None]] = {}
        self._ended = 0  # jobs seen to end, counted before they leave `_running` (`idle_epoch`)
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
        if self._stop.is_set():
            self._stop_now.set()
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

    @property
    def idle_epoch(self) -> int | None:
        """None while a job runs in this worker's pool (until the worker has seen it end);
        otherwise how many jobs it has seen end. What was read of the database while this
        stayed the same was not changed meanwhile by a job of this process."""
        return None if self._running else self._ended

    def run(self) -> None:
        load_job_modules(self.settings.job_modules)
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue(QUEUE_SIZE)
        drain = threading.Thread(target=self._drain_events, name="vur-job-events", daemon=True)
        drain.start()
        self._pool = self._new_pool(context)
        log.info("worker_started", worker_id=self.worker_id, processes=self.processes)
        next_sweep = next_heartbeat = 0.0
        try:
            while not self._stop.is_set():
                try:
                    wait_for_quiet()
                    now = time.monotonic()
                    # Heartbeat first: after a long stall (a locked database) the sweep must
                    # not find this worker's own, live jobs stale.
                    if now >= next_heartbeat:
                        self._heartbeat()
                        next_heartbeat = now + self.settings.job_heartbeat_seconds
                    if now >= next_sweep:
                        self._sweep()
                        next_sweep = now + min(self.settings.job_stale_after_seconds / 2, 10.0)
                    self._reap(context)
                    while len(self._running) < self.processes and not self._stop.is_set():
                        if not self._claim_and_submit(context):
                            break
                except Exception as exc:  # the database went away, say: keep going, try again
                    log.exception("worker_loop_error", worker_id=self.worker_id, error=repr(exc))
                    self._stop.wait(LOOP_ERROR_BACKOFF_SECONDS)
                    continue
                service.jobs_available.wait(timeout=0.5)
                service.jobs_available.clear()
        except BaseException:  # KeyboardInterrupt: no waiting for running jobs
            self._stop_now.set()
            raise
        finally:
            try:
                self._finish_running(context)
            except Exception as exc:
                log.exception("worker_stop_error", worker_id=self.worker_id, error=repr(exc))
            try:
                self._events.put(None, timeout=2)
            except queue.Full:  # the drain thread is gone or stuck: it is a daemon
                pass
            drain.join(2)
            log.info("worker_stopped", worker_id=self.worker_id)

    def _finish_running(self, context: Any) -> None:
        deadline = time.monotonic() + self.drain_seconds
        next_heartbeat = 0.0
        try:
            while self._running and time.monotonic() < deadline and not self._stop_now.is_set():
                if time.monotonic() >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = time.monotonic() + self.settings.job_heartbeat_seconds
                self._stop_now.wait(0.1)
                self._reap(context)
        finally:
            assert self._pool is not None
            self._reap(context, rebuild=False)
            unfinished = [job_id for job_id, future in self._running.items() if not future.done()]
            if unfinished:
                _kill_pool_processes(self._pool)
            self._pool.shutdown(wait=False, cancel_futures=True)
            if unfinished:
                with self.database.session() as session:
                    for job_id in unfinished:
                        job = self._own_running_job(session, job_id)
                        if job is not None:
                            service.abandon(session, job, f"Worker {self.worker_id} shut down before the job finished")
                log.warning("jobs_abandoned", worker_id=self.worker_id, job_ids=[str(j) for j in unfinished])
            self._running.clear()

    def _own_running_job(self, session: Any, job_id: uuid.UUID) -> Job | None:
        job = session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status == JobStatus.running and job.worker_id == self.worker_id:
            return job
        return None

    def _new_pool(self, context: Any) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=context,
            initializer=_init_child,
            initargs=(self._events, os.getpid(), self.settings.model_dump_json(), self.forward_telemetry),
        )
        # Start every process now. A process the pool spawns on demand, once it is busy,
        # can die unnoticed until some other job ends (the pool's manager thread may not
        # watch it yet), and its job would stay "running", heartbeat and all. Warm
        # processes also start jobs without the import delay.
        warm_up = [pool.submit(_warm_up) for _ in range(self.processes)]
        try:
            for future in warm_up:
                future.result(timeout=120)
        except Exception as exc:
            log.error("job_processes_failed_to_start", worker_id=self.worker_id, error=repr(exc))
        return pool

    def _drain_events(self) -> None:
        """What the job processes send: events onto the bus; log records into the ring
        only (the job process wrote them out already); counter reports onto the counters."""
        while True:
            try:
                # No timeout: a thread that woke every second to find nothing would take the
                # GIL from the API's forecasts each time. `run` ends it with a None.
                message = self._events.get()
            except (EOFError, OSError):
                return
            if message is None:
                return
            try:
                if isinstance(message, ForwardedRecord):
                    keep_forwarded(message)
                elif isinstance(message, CounterDeltas):
                    add_counter_deltas(message)
                else:
                    bus.publish(message)
            except Exception as exc:  # one bad message must not stop the rest
                log.warning("job_message_failed", worker_id=self.worker_id, message_type=type(message).__name__, error=repr(exc))

    def _claim_and_submit(self, context: Any) -> bool:
        if not service.any_queued(self.database):
            return False
        with self.database.session() as session:
            job = service.claim_next(session, self.worker_id)
            if job is None:
                return False
            job_id = job.id
        assert self._pool is not None
        log.info("job_claimed", job_id=str(job_id), worker_id=self.worker_id)
        try:
            self._running[job_id] = self._pool.submit(execute_job, job_id)
        except BrokenProcessPool:
            # The pool broke since the last reap: hand back what it took down, start afresh.
            self._reap(context, rebuild=False)
            self._replace_pool(context)
            try:
                self._running[job_id] = self._pool.submit(execute_job, job_id)
            except BrokenProcessPool as exc:
                with self.database.session() as session:
                    if (job := self._own_running_job(session, job_id)) is not None:
                        service.abandon(session, job, f"Worker {self.worker_id} could not start a process for the job ({exc!r})")
                raise
        return True

    def _reap(self, context: Any, *, rebuild: bool = True) -> None:
        broken = False
        for job_id, future in list(self._running.items()):
            if not future.done():
                continue
            self._ended += 1
            del self._running[job_id]
            error = future.exception()
            if error is None:
                continue
            broken = broken or isinstance(error, BrokenProcessPool)
            with self.database.session() as session:
                if (job := self._own_running_job(session, job_id)) is not None:
                    # A process that dies breaks the whole pool: its siblings' jobs end here too.
                    service.abandon(session, job, f"The process running this job crashed or was killed ({error!r})")
        if broken and rebuild:
            self._replace_pool(context)

    def _replace_pool(self, context: Any) -> None:
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
