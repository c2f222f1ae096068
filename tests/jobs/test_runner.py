"""The queue and the state machine underneath the runner, on a database of their own:
claiming is exclusive, transitions are guarded, stale jobs are swept, and a worker
process that dies takes only its own job down."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import Counter
from sqlalchemy import select, text, update

import tests.jobs.sample_jobs  # noqa: F401  (registers the test job types)
from tests.conftest import make_settings
from vur.core.db import Database, utcnow
from vur.core.metrics import REGISTRY, CounterReporter, add_counter_deltas
from vur.jobs import service
from vur.jobs.exceptions import IllegalTransition, JobAlreadyFinished
from vur.jobs.models import TERMINAL, Job, JobStatus
from vur.jobs.runner import JobContext, Worker, WorkerGone, offer


def enqueue(db: Database, type_: str = "tests.count", **payload: object) -> uuid.UUID:
    with db.session() as session:
        return service.enqueue(session, type_, dict(payload), workspace_id=None).id


def load(db: Database, job_id: uuid.UUID) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- claiming ---------------------------------------------------------------


def test_enqueue_makes_a_queued_row_and_rejects_unknown_types(db: Database) -> None:
    job = load(db, enqueue(db, "tests.count_retry_safe", steps=2))
    assert (job.status, job.progress, job.attempts, job.max_attempts, job.log, job.payload) == (JobStatus.queued, 0.0, 0, 3, [], {"steps": 2})
    assert job.worker_id is None and job.started_at is None and job.finished_at is None
    assert load(db, enqueue(db, "tests.count")).max_attempts == 1
    with pytest.raises(ValueError, match="unknown job type"), db.session() as session:
        service.enqueue(session, "tests.no_such_job", {}, workspace_id=None)
    with db.session() as session:
        assert session.scalar(select(Job).where(Job.type == "tests.no_such_job")) is None


def test_claim_next_takes_the_oldest_job_of_the_given_types(db: Database) -> None:
    first, second, third = enqueue(db), enqueue(db, "tests.count_retry_safe"), enqueue(db)
    with db.session() as session:
        job = service.claim_next(session, "w1", types={"tests.count_retry_safe"})
        assert job is not None and job.id == second
    with db.session() as session:
        job = service.claim_next(session, "w1")
        assert job is not None and job.id == first
        assert (job.status, job.worker_id, job.attempts) == (JobStatus.running, "w1", 1)
        assert job.started_at is not None and job.heartbeat_at is not None
    with db.session() as session:
        job = service.claim_next(session, "w2")
        assert job is not None and job.id == third
    with db.session() as session:
        assert service.claim_next(session, "w2") is None


def _race(db: Database, workers: int, claim_all: bool) -> list[tuple[str, uuid.UUID]]:
    barrier = threading.Barrier(workers)
    claims: list[tuple[str, uuid.UUID]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(name: str) -> None:
        try:
            barrier.wait(10)
            while True:
                with db.session() as session:
                    job = service.claim_next(session, name)
                    job_id = job.id if job else None
                if job_id is None:
                    return
                with lock:
                    claims.append((name, job_id))
                if not claim_all:
                    return
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"worker-{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return claims


def test_two_runners_racing_for_one_job_claim_it_once(db: Database) -> None:
    for _ in range(25):
        job_id = enqueue(db)
        claims = _race(db, 2, claim_all=False)
        assert [c[1] for c in claims] == [job_id], claims
        job = load(db, job_id)
        assert job.worker_id == claims[0][0]
        assert job.attempts == 1


def test_many_runners_draining_a_queue_claim_every_job_exactly_once(db: Database) -> None:
    job_ids = {enqueue(db) for _ in range(40)}
    claims = _race(db, 4, claim_all=True)
    claimed = [job_id for _, job_id in claims]
    assert len(claimed) == len(set(claimed)) == 40
    assert set(claimed) == job_ids
    with db.session() as session:
        rows = {job.id: job for job in session.scalars(select(Job))}
    for worker, job_id in claims:
        assert rows[job_id].worker_id == worker
        assert rows[job_id].attempts == 1
        assert rows[job_id].status == JobStatus.running


# --- the state machine ------------------------------------------------------


def job_in(db: Database, status: JobStatus) -> uuid.UUID:
    job_id = enqueue(db)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        if status == JobStatus.queued:
            return job_id
        if status == JobStatus.cancelled:
            service.transition(session, job, JobStatus.cancelled)
            return job_id
        service.transition(session, job, JobStatus.running)
        if status != JobStatus.running:
            service.transition(session, job, status)
    return job_id


LEGAL = {
    (JobStatus.queued, JobStatus.running),
    (JobStatus.queued, JobStatus.cancelled),
    (JobStatus.running, JobStatus.succeeded),
    (JobStatus.running, JobStatus.failed),
    (JobStatus.running, JobStatus.cancelled),
    (JobStatus.running, JobStatus.queued),
}


@pytest.mark.parametrize("source", list(JobStatus))
def test_transition_refuses_every_illegal_move(db: Database, source: JobStatus) -> None:
    for target in JobStatus:
        job_id = job_in(db, source)
        before = load(db, job_id)
        if (source, target) in LEGAL:
            with db.session() as session:
                job = session.get(Job, job_id)
                assert job is not None
                service.transition(session, job, target)
            assert load(db, job_id).status == target
            continue
        with pytest.raises(IllegalTransition, match=f"{source.value} -> {target.value}"), db.session() as session:
            job = session.get(Job, job_id)
            assert job is not None
            service.transition(session, job, target, error="should not be written")
        after = load(db, job_id)
        assert (after.status, after.error, after.finished_at, after.progress) == (before.status, before.error, before.finished_at, before.progress)


def test_transitions_keep_the_row_consistent(db: Database) -> None:
    job_id = job_in(db, JobStatus.running)
    job = load(db, job_id)
    assert job.started_at is not None and job.heartbeat_at is not None and job.finished_at is None
    with db.session() as session:
        row = session.get(Job, job_id)
        assert row is not None
        service.transition(session, row, JobStatus.succeeded, result={"answer": 42})
    job = load(db, job_id)
    assert (job.status, job.progress, job.result) == (JobStatus.succeeded, 100.0, {"answer": 42})
    assert job.finished_at is not None and job.finished_at >= job.started_at


def test_request_cancel_of_queued_and_finished_jobs(db: Database) -> None:
    job_id = enqueue(db)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        service.request_cancel(session, job)
    job = load(db, job_id)
    assert job.status == JobStatus.cancelled
    assert job.error == "Cancelled before it started"
    assert job.finished_at is not None and job.started_at is None and job.attempts == 0
    # A cancelled job is never claimed.
    with db.session() as session:
        assert service.claim_next(session, "w") is None
    for status in TERMINAL:
        finished = job_in(db, status)
        with pytest.raises(JobAlreadyFinished) as caught, db.session() as session:
            job = session.get(Job, finished)
            assert job is not None
            service.request_cancel(session, job)
        assert caught.value.status_code == 409
        assert caught.value.details == {"status": status.value}


def test_request_cancel_of_a_running_job_only_asks(db: Database) -> None:
    job_id = job_in(db, JobStatus.running)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        service.request_cancel(session, job)
    job = load(db, job_id)
    assert job.status == JobStatus.running and job.cancel_requested


# --- heartbeats and the stale sweep -----------------------------------------


def age_heartbeat(db: Database, job_id: uuid.UUID, seconds: float) -> None:
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def claim(db: Database, worker: str, job_id: uuid.UUID) -> None:
    with db.session() as session:
        job = service.claim_next(session, worker)
        assert job is not None and job.id == job_id


def test_heartbeat_only_touches_the_workers_own_running_jobs(db: Database) -> None:
    mine, theirs = enqueue(db), enqueue(db)
    claim(db, "me", mine)
    claim(db, "them", theirs)
    age_heartbeat(db, mine, 60)
    age_heartbeat(db, theirs, 60)
    with db.session() as session:
        service.heartbeat(session, "me", [mine, theirs])
    assert utcnow() - load(db, mine).heartbeat_at < timedelta(seconds=5)  # type: ignore[operator]
    assert utcnow() - load(db, theirs).heartbeat_at > timedelta(seconds=50)  # type: ignore[operator]


def test_sweep_requeues_retry_safe_jobs_and_fails_the_others(db: Database) -> None:
    dead = "host-a:4242:dead01"
    unsafe, safe, alive = enqueue(db, steps=3), enqueue(db, "tests.count_retry_safe", steps=3), enqueue(db)
    claim(db, dead, unsafe)
    claim(db, dead, safe)
    claim(db, "host-b:1:alive1", alive)
    age_heartbeat(db, unsafe, 60)
    age_heartbeat(db, safe, 60)
    age_heartbeat(db, alive, 5)
    service.jobs_available.clear()
    with db.session() as session:
        swept = service.sweep_stale(session, timedelta(seconds=30))
        assert {job.id for job in swept} == {unsafe, safe}
    assert service.jobs_available.is_set()  # a re-queued job wakes in-process runners

    job = load(db, unsafe)
    assert job.status == JobStatus.failed
    assert job.error is not None and dead in job.error and "stopped responding" in job.error
    assert job.finished_at is not None

    job = load(db, safe)
    assert (job.status, job.attempts, job.progress, job.worker_id, job.heartbeat_at, job.error) == (JobStatus.queued, 1, 0.0, None, None, None)
    assert dead in job.log[-1] and "re-queued" in job.log[-1]

    assert load(db, alive).status == JobStatus.running
    with db.session() as session:
        assert service.sweep_stale(session, timedelta(seconds=30)) == []


def test_a_retry_safe_job_is_retried_until_max_attempts_then_failed(db: Database) -> None:
    job_id = enqueue(db, "tests.count_retry_safe")
    for attempt in range(1, 4):
        claim(db, f"host:{attempt}:w", job_id)
        assert load(db, job_id).attempts == attempt
        age_heartbeat(db, job_id, 60)
        with db.session() as session:
            service.sweep_stale(session, timedelta(seconds=30))
    job = load(db, job_id)
    assert job.status == JobStatus.failed
    assert job.attempts == job.max_attempts == 3
    assert job.error is not None and "host:3:w" in job.error and "stopped responding" in job.error
    assert "3 attempts" in job.error
    assert sum("re-queued" in line for line in job.log) == 2


def test_a_stale_job_that_was_asked_to_cancel_is_not_requeued(db: Database) -> None:
    job_id = enqueue(db, "tests.count_retry_safe")
    claim(db, "host:1:w", job_id)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        service.request_cancel(session, job)
    age_heartbeat(db, job_id, 60)
    with db.session() as session:
        service.sweep_stale(session, timedelta(seconds=30))
    job = load(db, job_id)
    assert job.status == JobStatus.cancelled and job.attempts == 1
    assert job.error is not None and job.error.startswith("Cancelled by request") and "host:1:w stopped responding" in job.error


def test_a_job_that_lost_its_claim_stops_without_touching_the_row(db: Database, fresh_url: str, tmp_path: Path) -> None:
    """Split brain: the sweeper gave the job to another worker while the first one was
    still running it (a long database stall, say). The first run must stop at its next
    progress report instead of writing over the second run."""
    settings = make_settings(fresh_url, tmp_path / "data")
    job_id = enqueue(db, "tests.count_retry_safe")
    claim(db, "host:1:slow", job_id)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        context = JobContext(job, settings, os.getppid())
    context.progress(20, "first run, step 1")
    age_heartbeat(db, job_id, 60)
    with db.session() as session:
        service.sweep_stale(session, timedelta(seconds=30))
    claim(db, "host:2:fresh", job_id)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        second = JobContext(job, settings, os.getppid())
    second.progress(10, "second run, step 1")
    with pytest.raises(WorkerGone):
        context.progress(40, "first run, step 2")
    job = load(db, job_id)
    assert (job.progress, job.worker_id, job.attempts) == (10.0, "host:2:fresh", 2)
    assert "first run, step 2" not in job.log


# --- a real Worker ----------------------------------------------------------


def test_a_crashing_job_process_fails_only_its_job_and_the_pool_recovers(fresh_url: str, db: Database, tmp_path: Path) -> None:
    worker = Worker(make_settings(fresh_url, tmp_path / "data"), processes=1, name="test-runner-crash")
    worker.start_in_background()
    try:
        crashed = enqueue(db, "tests.crash", after_steps=1)
        wait_for(lambda: load(db, crashed).status in TERMINAL, 60, "the crashing job to end")
        job = load(db, crashed)
        assert job.status == JobStatus.failed
        assert job.error is not None and "crashed" in job.error
        assert job.progress == 10.0

        after = enqueue(db, steps=2, delay=0.05)
        wait_for(lambda: load(db, after).status in TERMINAL, 60, "the next job to end")
        job = load(db, after)
        assert (job.status, job.result, job.worker_id) == (JobStatus.succeeded, {"steps": 2}, "test-runner-crash")
    finally:
        worker.stop()
    assert not worker.state["alive"]


def test_a_dying_job_process_takes_its_siblings_down_and_they_are_handed_back(fresh_url: str, db: Database, tmp_path: Path) -> None:
    """A process that dies breaks the whole pool, and the pool kills its other processes:
    their jobs are re-queued when retry-safe (and run again), failed otherwise."""
    worker = Worker(make_settings(fresh_url, tmp_path / "data"), processes=3, name="test-runner-siblings")
    worker.start_in_background()
    try:
        safe = enqueue(db, "tests.count_retry_safe", steps=10, delay=0.05, first_attempt_delay=3)
        unsafe = enqueue(db, "tests.count", steps=600, delay=0.1)
        wait_for(lambda: all(load(db, j).progress > 0 for j in (safe, unsafe)), 60, "both siblings to run")
        crashed = enqueue(db, "tests.crash", after_steps=1)
        # Noticed at once, not when some other job happens to end (the retry-safe
        # sibling's first attempt would take 30 s).
        for job_id in (crashed, unsafe):
            wait_for(lambda: load(db, job_id).status in TERMINAL, 20, "the crash to be noticed and end the job")
        assert load(db, safe).status != JobStatus.succeeded  # it was still running when the pool broke
        wait_for(lambda: load(db, safe).status in TERMINAL, 60, "the retry-safe sibling to run again")
        for job_id in (crashed, unsafe):
            job = load(db, job_id)
            assert job.status == JobStatus.failed
            assert job.error is not None and "crashed or was killed" in job.error and "not safe to retry" in job.error
        job = load(db, safe)
        assert (job.status, job.attempts, job.result) == (JobStatus.succeeded, 2, {"steps": 10})
        assert any("crashed or was killed" in line and "re-queued" in line for line in job.log)
    finally:
        worker.stop()


def test_stop_lets_a_nearly_done_job_finish(fresh_url: str, db: Database, tmp_path: Path) -> None:
    worker = Worker(make_settings(fresh_url, tmp_path / "data"), processes=1, name="test-runner-drain", drain_seconds=20)
    worker.start_in_background()
    try:
        job_id = enqueue(db, steps=10, delay=0.2)
        wait_for(lambda: load(db, job_id).progress > 0, 60, "the job to run")
    finally:
        worker.stop(timeout=30)
    assert not worker.state["alive"]
    job = load(db, job_id)
    assert (job.status, job.result) == (JobStatus.succeeded, {"steps": 10})


def test_stop_hands_back_the_jobs_that_do_not_finish_in_time(fresh_url: str, db: Database, tmp_path: Path) -> None:
    before = {p.pid for p in multiprocessing.active_children()}
    worker = Worker(make_settings(fresh_url, tmp_path / "data"), processes=3, name="test-runner-stop", drain_seconds=1)
    worker.start_in_background()
    try:
        unsafe = enqueue(db, steps=300, delay=0.1)
        safe = enqueue(db, "tests.count_retry_safe", steps=300, delay=0.1)
        cancelling = enqueue(db, "tests.count_retry_safe", steps=300, delay=1000)
        wait_for(lambda: all(load(db, j).status == JobStatus.running for j in (unsafe, safe, cancelling)), 60, "the jobs to run")
        wait_for(lambda: all(load(db, j).progress > 0 for j in (unsafe, safe)), 60, "progress")
        with db.session() as session:
            job = session.get(Job, cancelling)
            assert job is not None
            service.request_cancel(session, job)  # it sleeps, and never reaches its next progress
        job_processes = {p.pid for p in multiprocessing.active_children()} - before
        assert len(job_processes) >= 3
    finally:
        started = time.monotonic()
        worker.stop(timeout=30)
    assert time.monotonic() - started < 15
    assert not worker.state["alive"]

    job = load(db, unsafe)
    assert job.status == JobStatus.failed
    assert job.error == "Worker test-runner-stop shut down before the job finished; the job was not safe to retry"
    job = load(db, safe)
    assert (job.status, job.attempts, job.worker_id) == (JobStatus.queued, 1, None)
    assert job.log[-1] == "Worker test-runner-stop shut down before the job finished; re-queued"
    job = load(db, cancelling)
    assert job.status == JobStatus.cancelled
    # The job processes were stopped with the worker: nothing keeps running the jobs.
    wait_for(lambda: not job_processes & {p.pid for p in multiprocessing.active_children()}, 10, "the job processes to exit")
    progress = load(db, unsafe).progress
    time.sleep(0.5)
    assert load(db, unsafe).progress == progress


def test_the_worker_survives_a_database_outage(fresh_url: str, db: Database, tmp_path: Path) -> None:
    """Errors from the database (here: the jobs table gone for a while) must not kill
    the worker's loop for good; it carries on once the database is back."""
    worker = Worker(make_settings(fresh_url, tmp_path / "data"), processes=1, name="test-runner-outage")
    worker.start_in_background()
    try:
        before = enqueue(db, steps=1, delay=0)
        wait_for(lambda: load(db, before).status in TERMINAL, 60, "the first job")
        with db.session() as session:
            session.execute(text("ALTER TABLE jobs RENAME TO jobs_away"))
        try:
            time.sleep(3)  # several turns of the loop fail meanwhile
            assert worker.state["alive"]
        finally:
            with db.session() as session:
                session.execute(text("ALTER TABLE jobs_away RENAME TO jobs"))
        after = enqueue(db, steps=1, delay=0)
        wait_for(lambda: load(db, after).status in TERMINAL, 30, "a job after the outage")
        assert load(db, after).status == JobStatus.succeeded
    finally:
        worker.stop()


# --- what job processes send their runner -------------------------------------------


def test_a_full_queue_drops_messages_at_once_and_counter_reports_catch_up() -> None:
    """A job never waits on a parent that does not drain the queue; a counter report the
    queue refused is carried by the next one, so no count is lost."""
    in_child = {"done": Counter("done_total", "test", ["kind"], registry=None)}
    in_parent = {"done": Counter("done_total", "test", ["kind"], registry=None)}

    def values(counters: dict[str, Counter]) -> dict[str, float]:
        return {s.labels["kind"]: s.value for family in counters["done"].collect() for s in family.samples if s.name == "done_total"}

    def dropped() -> float:
        return REGISTRY.get_sample_value("vur_job_messages_dropped_total", {"kind": "metrics"}) or 0.0

    message_queue = multiprocessing.get_context("spawn").Queue(1)
    reporter = CounterReporter(in_child)

    def send(deltas: object) -> bool:
        return offer(message_queue, deltas, "metrics")

    in_child["done"].labels("a").inc(2)
    reporter.report(send)
    in_child["done"].labels("a").inc(3)
    in_child["done"].labels("b").inc()
    before, started = dropped(), time.monotonic()
    reporter.report(send)  # the queue is full: dropped, not waited on
    assert time.monotonic() - started < 0.5 and dropped() == before + 1
    add_counter_deltas(message_queue.get(timeout=5), in_parent)
    assert values(in_parent) == {"a": 2}
    reporter.report(send)  # what the dropped report had, and nothing twice
    add_counter_deltas(message_queue.get(timeout=5), in_parent)
    assert values(in_parent) == values(in_child) == {"a": 5, "b": 1}
    reporter.report(send)  # nothing new: nothing sent
    with pytest.raises(queue.Empty):
        message_queue.get(timeout=0.2)
    message_queue.close()
