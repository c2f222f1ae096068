"""Health checks that the live test server (an in-process runner, a working store) never
reaches: external job runners known only by their heartbeats, and failing probes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.conftest import make_settings
from vur.core import migrations
from vur.core.db import get_database, utcnow
from vur.core.storage import LocalArtifactStore
from vur.jobs.models import Job, JobStatus
from vur.monitoring import service
from vur.monitoring.schemas import DatabaseHealth, HealthComponents, JobRunnerHealth, StorageHealth


def test_an_external_runner_is_known_by_its_latest_heartbeat(fresh_database_url: str, tmp_path: Path) -> None:
    migrations.upgrade(fresh_database_url)
    database = get_database(fresh_database_url)
    settings = make_settings(fresh_database_url, tmp_path, job_runner="external")

    with database.session() as session:
        silent = service.check_job_runner(session, settings, None)
    assert (silent.status, silent.detail, silent.last_heartbeat_at) == ("unknown", "external, no heartbeat yet", None)

    beat = utcnow() - timedelta(seconds=2)
    with database.session() as session:
        session.add(Job(type="sample", status=JobStatus.running, worker_id="host:1:abc", heartbeat_at=beat))
        session.add(Job(type="sample", status=JobStatus.succeeded, worker_id="host:2:def", heartbeat_at=beat - timedelta(hours=1)))
    with database.session() as session:
        alive = service.check_job_runner(session, settings, None)
    assert alive.status == "healthy" and alive.last_heartbeat_at == beat and "host:1:abc" in alive.detail

    with database.session() as session:
        stale = service.check_job_runner(session, make_settings(fresh_database_url, tmp_path, job_runner="external", job_stale_after_seconds=1), None)
    assert stale.status == "unknown" and stale.last_heartbeat_at == beat


def test_failing_probes_are_reported_not_raised(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    (tmp_path / "artifacts").rmdir()
    storage = service.check_storage(store, tmp_path / "artifacts")
    assert storage.status == "unhealthy" and "does not exist" in storage.detail and storage.free_bytes is None

    database = get_database(f"sqlite:///{tmp_path / 'missing' / 'vur.db'}")
    checked = service.check_database(database)
    assert checked.status == "unhealthy" and checked.latency_ms is None and "OperationalError" in checked.detail
    database.dispose()


def test_the_overall_status_counts_required_components_first(tmp_path: Path) -> None:
    database = DatabaseHealth(status="healthy", detail="SELECT 1 answered", backend="sqlite", latency_ms=0.5)
    storage = StorageHealth(status="healthy", detail="writable", root=str(tmp_path), free_bytes=1)
    stopped = JobRunnerHealth(status="unhealthy", detail="stopped", mode="inprocess", alive=False, processes=1, running_jobs=0, last_heartbeat_at=None)
    unknown = JobRunnerHealth(status="unknown", detail="external, no heartbeat yet", mode="external", alive=None, processes=None, running_jobs=None, last_heartbeat_at=None)
    redis = service.check_redis(make_settings("sqlite://", tmp_path))

    def overall(**changes: object) -> str:
        components = {"database": database, "storage": storage, "job_runner": unknown, "redis": redis, **changes}
        return service.health_report(HealthComponents(**components)).status  # type: ignore[arg-type]

    assert overall() == "healthy"
    assert overall(job_runner=stopped) == "degraded"
    assert overall(storage=storage.model_copy(update={"status": "unhealthy"})) == "unhealthy"
    assert overall(database=database.model_copy(update={"status": "unhealthy"}), job_runner=stopped) == "unhealthy"
