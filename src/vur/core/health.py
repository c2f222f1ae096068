"""Liveness and readiness, outside the /api/v1 prefix (seed 004)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from vur import __version__
from vur.core.deps import DEFERRED_WAIT_SECONDS
from vur.core.metrics import REGISTRY

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the service up", responses={200: {"content": {"application/json": {"example": {"status": "healthy"}}}}})
def health() -> dict[str, str]:
    return {"status": "healthy"}


def _check(probe: Any) -> dict[str, Any]:
    try:
        detail = probe()
        return {"status": "healthy", **(detail or {})}
    except Exception as exc:  # a failed probe is reported, not raised
        return {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}


@router.get(
    "/health/detailed",
    summary="Service, version, and the state of the database, storage and job runner",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "healthy",
                        "service": "VUR",
                        "version": "0.1.0",
                        "database": {"status": "healthy", "backend": "sqlite"},
                        "storage": {"status": "healthy", "backend": "local"},
                        "jobs": {"status": "healthy", "runner": "inprocess", "counts": {"queued": 0, "running": 1}},
                    }
                }
            }
        }
    },
)
def health_detailed(request: Request, response: Response) -> dict[str, Any]:
    state = request.app.state
    database = state.database

    def probe_database() -> dict[str, Any]:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"backend": database.engine.dialect.name}

    def probe_storage() -> dict[str, Any]:
        state.store.check()
        return {"backend": "local"}

    def probe_jobs() -> dict[str, Any]:
        from vur.jobs.service import count_by_status

        with database.session() as session:
            counts = count_by_status(session)
        runner = state.worker.state if state.worker is not None else None
        if runner is not None and not runner["alive"]:
            raise RuntimeError("the in-process job runner has stopped")
        return {"runner": state.settings.job_runner, "worker": runner, "counts": counts}

    checks = {"database": _check(probe_database), "storage": _check(probe_storage), "jobs": _check(probe_jobs)}
    healthy = all(c["status"] == "healthy" for c in checks.values())
    if not healthy:
        response.status_code = 503
    return {"status": "healthy" if healthy else "unhealthy", "service": "VUR", "version": __version__, **checks}


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
def metrics(request: Request) -> Response:
    # Counted once recorded: the forecasts answered before this scrape are in it.
    request.app.state.database.deferred.wait(DEFERRED_WAIT_SECONDS)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
