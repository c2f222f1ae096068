"""A `vur worker` killed outright (SIGKILL: no cleanup, no goodbye) while running a job.

Each test runs real `vur worker` processes on a database of its own, kills one, starts
another and checks what became of the job: a job that is not safe to retry fails with
an error that says its worker stopped responding; a retry-safe one runs again and
succeeds. No process of any worker may outlive the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import TEST_JOB_MODULES
from tests.jobs.test_runner import enqueue, load, wait_for
from vur.core.db import Database
from vur.jobs.models import TERMINAL, JobStatus

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 0.5
STALE_AFTER_SECONDS = 2


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


class WorkerProcess:
    def __init__(self, url: str, data_dir: Path, name: str, processes: int = 1) -> None:
        self.log_path = data_dir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VUR_")}
        env.update(
            VUR_ENVIRONMENT="test",
            VUR_DATABASE_URL=url,
            VUR_DATA_DIR=str(data_dir),
            VUR_SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
            VUR_JOB_MODULES=json.dumps(TEST_JOB_MODULES),
            VUR_JOB_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
            VUR_JOB_STALE_AFTER_SECONDS=str(STALE_AFTER_SECONDS),
            VUR_LOG_LEVEL="INFO",
            PYTHONPATH=str(ROOT),
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vur.cli", "worker", "--processes", str(processes)],
                env=env,
                cwd=data_dir,  # no stray .env file is read
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def members(self) -> list[int]:
        return group_members(self.pgid)

    def kill_group(self) -> None:
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def wait_group_gone(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.members():
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of worker group {self.pgid} survive: {self.members()}\n{self.log()}")
            time.sleep(0.1)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Every worker a test starts; whatever happens, each process group is killed and
    checked empty at the end."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill_group()
    for worker in started:
        worker.wait_group_gone(10)


def start(workers: list[WorkerProcess], url: str, tmp_path: Path, processes: int = 1) -> WorkerProcess:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    worker = WorkerProcess(url, data_dir, f"worker-{len(workers) + 1}", processes)
    workers.append(worker)
    return worker


def wait_until_running_with_progress(db: Database, job_id: uuid.UUID, worker: WorkerProcess) -> str:
    def running() -> bool:
        assert worker.process.poll() is None, f"the worker exited early:\n{worker.log()}"
        job = load(db, job_id)
        return job.status == JobStatus.running and job.progress > 0

    wait_for(running, 90, "the job to run and report progress")
    worker_id = load(db, job_id).worker_id
    assert worker_id is not None and f":{worker.process.pid}:" in worker_id
    return worker_id


def wait_until_finished(db: Database, job_id: uuid.UUID, worker: WorkerProcess, timeout: float = 90) -> None:
    def finished() -> bool:
        assert worker.process.poll() is None, f"the worker exited early:\n{worker.log()}"
        return load(db, job_id).status in TERMINAL

    try:
        wait_for(finished, timeout, "the job to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log()}") from None


def test_a_job_that_is_not_safe_to_retry_fails_when_its_worker_is_killed(fresh_url: str, db: Database, tmp_path: Path, workers: list[WorkerProcess]) -> None:
    first = start(workers, fresh_url, tmp_path)
    job_id = enqueue(db, "tests.count", steps=300, delay=0.1)
    dead_worker_id = wait_until_running_with_progress(db, job_id, first)
    assert len(first.members()) >= 2  # the worker and its job process

    first.kill_group()
    first.wait_group_gone(10)
    progress_at_death = load(db, job_id).progress
    time.sleep(STALE_AFTER_SECONDS / 2)
    job = load(db, job_id)
    assert job.status == JobStatus.running  # nobody has noticed yet: nothing is left to say so
    assert job.progress == progress_at_death

    second = start(workers, fresh_url, tmp_path)
    wait_until_finished(db, job_id, second)
    job = load(db, job_id)
    assert job.status == JobStatus.failed, job.error
    assert job.error is not None
    assert "stopped responding" in job.error and dead_worker_id in job.error
    assert job.attempts == 1
    assert job.progress == progress_at_death < 100
    assert job.result is None and job.finished_at is not None

    # The second worker is healthy and runs new work.
    follow_up = enqueue(db, "tests.count", steps=2, delay=0.05)
    wait_until_finished(db, follow_up, second)
    job = load(db, follow_up)
    assert job.status == JobStatus.succeeded
    assert job.worker_id is not None and f":{second.process.pid}:" in job.worker_id

    # SIGTERM stops a worker cleanly, with every process of its group.
    os.kill(second.process.pid, signal.SIGTERM)
    assert second.process.wait(30) == 0, second.log()
    second.wait_group_gone(10)


def test_a_retry_safe_job_is_requeued_and_succeeds_on_another_worker(fresh_url: str, db: Database, tmp_path: Path, workers: list[WorkerProcess]) -> None:
    first = start(workers, fresh_url, tmp_path)
    job_id = enqueue(db, "tests.count_retry_safe", steps=10, delay=0.05, first_attempt_delay=2)
    dead_worker_id = wait_until_running_with_progress(db, job_id, first)

    first.kill_group()
    first.wait_group_gone(10)

    second = start(workers, fresh_url, tmp_path)
    wait_until_finished(db, job_id, second)
    job = load(db, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert job.attempts == 2
    assert job.result == {"steps": 10} and job.progress == 100.0 and job.error is None
    assert job.worker_id is not None and job.worker_id != dead_worker_id
    assert f":{second.process.pid}:" in job.worker_id
    requeued = [line for line in job.log if "re-queued" in line]
    assert len(requeued) == 1 and dead_worker_id in requeued[0]
    assert job.log[-1] == "step 10/10"


def test_killing_only_the_worker_process_leaves_no_orphans(fresh_url: str, db: Database, tmp_path: Path, workers: list[WorkerProcess]) -> None:
    """What the OOM killer does: only the parent dies. Its job processes (one busy,
    one idle) must notice and exit on their own rather than live on as orphans."""
    first = start(workers, fresh_url, tmp_path, processes=2)
    job_id = enqueue(db, "tests.count", steps=300, delay=0.1)
    dead_worker_id = wait_until_running_with_progress(db, job_id, first)
    wait_for(lambda: len(first.members()) >= 3, 60, "both job processes to start")

    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    first.wait_group_gone(15)

    second = start(workers, fresh_url, tmp_path)
    wait_until_finished(db, job_id, second)
    job = load(db, job_id)
    assert job.status == JobStatus.failed
    assert job.error is not None and dead_worker_id in job.error


def test_sigterm_finishes_what_it_can_and_hands_back_the_rest(fresh_url: str, db: Database, tmp_path: Path, workers: list[WorkerProcess]) -> None:
    """A polite stop (SIGTERM, as from systemd or Kubernetes): no new work is taken, a
    job about to end may end, a long one is handed back at once instead of being left
    "running" for the stale sweep, and the worker exits cleanly with all its processes."""
    worker = start(workers, fresh_url, tmp_path, processes=2)
    short = enqueue(db, "tests.count", steps=8, delay=0.25)
    long = enqueue(db, "tests.count", steps=600, delay=0.1)
    wait_until_running_with_progress(db, short, worker)
    wait_until_running_with_progress(db, long, worker)
    os.kill(worker.process.pid, signal.SIGTERM)
    not_taken = enqueue(db, "tests.count", steps=1, delay=0)
    stopping = time.monotonic()
    assert worker.process.wait(30) == 0, worker.log()
    assert time.monotonic() - stopping < 20
    worker.wait_group_gone(10)

    assert load(db, short).status == JobStatus.succeeded
    job = load(db, long)
    assert job.status == JobStatus.failed
    assert job.error is not None and "shut down before the job finished" in job.error
    assert load(db, not_taken).status == JobStatus.queued
