from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from vur.core.db import utcnow
from vur.core.deps import AppDatabase, AppSettings, DbSession, Store
from vur.core.logging import RECENT_RECORDS
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.monitoring import alerts, dashboard, drift, service
from vur.monitoring.schemas import AlertRead, AlertRuleCreate, AlertRuleRead, HealthComponents, HealthReport, LogLevel, LogRecord, ModelMonitor, SystemSnapshot
from vur.monitoring.system import SAMPLER
from vur.registry.service import get_model

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])
AlertStatus = Literal["open", "acknowledged", "resolved"]
AlertKind = Literal["job_failed", "stream_failed", "stream_stalled", "error_threshold", "drift"]  # what the evaluator raises (alerts.py)


@router.get("/system", response_model=SystemSnapshot, summary="CPU, memory, swap, data-dir disk, network and this API process, measured now")
def system(principal: WorkspaceReader, settings: AppSettings) -> SystemSnapshot:
    return SAMPLER.snapshot(settings.data_dir)


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Database, storage, job runner and Redis, each with its status and detail (always 200: a report, not a readiness probe)",
)
def health(principal: WorkspaceReader, request: Request, session: DbSession, database: AppDatabase, store: Store, settings: AppSettings) -> HealthReport:
    components = HealthComponents(
        database=service.check_database(database),
        storage=service.check_storage(store, settings.artifacts_dir),
        job_runner=service.check_job_runner(session, settings, request.app.state.worker),
        redis=service.check_redis(settings),
    )
    return service.health_report(components)


@router.get("/logs", response_model=list[LogRecord], summary="Recent log records of this API process (and of its embedded runner's job processes) about the caller's workspace (all of them for a platform admin), newest first (X-Total-Count: how many matched)")
def logs(
    principal: WorkspaceReader,
    response: Response,
    level: Annotated[LogLevel | None, Query(description="Minimum level")] = None,
    since: Annotated[datetime | None, Query(description="Inclusive; a time without a zone is UTC")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive; a time without a zone is UTC")] = None,
    contains: Annotated[str | None, Query(max_length=200, description="Case-insensitive text in the event or any field")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[LogRecord]:
    # A workspace reads the records of its own requests, jobs and streams; a platform admin reads all, the process's own too.
    workspace_id = None if principal.is_superuser else str(principal.workspace_id)
    records, total = service.recent_logs(RECENT_RECORDS.snapshot(), workspace_id=workspace_id, level=level, since=since, until=until, contains=contains, limit=limit)
    set_total(response, total)
    return records


@router.get("/models", response_model=list[ModelMonitor], summary="The workspace's models: validation metrics beside predictions in the last 24 h and the live error")
def models(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams) -> list[ModelMonitor]:
    rows, total = service.model_overview(session, principal.workspace_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return rows


@router.get("/models/{model_id}/drift", summary="Recent observed values and forecasts against the training data: PSI and Kolmogorov-Smirnov per part")
def model_drift(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> dict[str, Any]:
    return drift.drift_report(session, store, get_model(session, model_id, principal.workspace_id), utcnow())


@router.get("/pipelines", summary="Pipelines with their progress, latest run (status, progress) and running streams")
def pipelines(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams) -> list[dict[str, Any]]:
    rows, total = service.pipeline_overview(session, principal.workspace_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return rows


# --- alerts (raised by the evaluator in monitoring/alerts.py) ------------------------


@router.get("/alerts", response_model=list[AlertRead], summary="Alerts of the workspace, newest first (filters: status open|acknowledged|resolved, kind)")
def list_alerts(
    principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, status: AlertStatus | None = None, kind: AlertKind | None = None
) -> list[AlertRead]:
    rows, total = alerts.list_alerts(session, principal.workspace_id, status=status, kind=kind, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [AlertRead.model_validate(row) for row in rows]


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRead, summary="Acknowledge an open alert (409 otherwise)")
def acknowledge_alert(alert_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> AlertRead:
    return AlertRead.model_validate(alerts.acknowledge(session, alerts.get_alert(session, alert_id, principal.workspace_id), principal.user_id))


@router.post("/alerts/{alert_id}/resolve", response_model=AlertRead, summary="Resolve an alert by hand (conditions that clear resolve theirs)")
def resolve_alert(alert_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> AlertRead:
    return AlertRead.model_validate(alerts.resolve(session, alerts.get_alert(session, alert_id, principal.workspace_id)))


@router.get("/alert-rules", response_model=list[AlertRuleRead], summary="Error rules of the workspace")
def list_alert_rules(principal: WorkspaceReader, session: DbSession) -> list[AlertRuleRead]:
    return [AlertRuleRead.model_validate(rule) for rule in alerts.list_rules(session, principal.workspace_id)]


@router.post("/alert-rules", response_model=AlertRuleRead, status_code=201, summary="Alert when a model's live error (MAE or RMSE) passes a threshold")
def create_alert_rule(body: AlertRuleCreate, principal: WorkspaceWriter, session: DbSession) -> AlertRuleRead:
    return AlertRuleRead.model_validate(alerts.create_rule(session, principal.workspace_id, body))


@router.delete("/alert-rules/{rule_id}", status_code=204, summary="Delete an error rule (its alerts stay)")
def delete_alert_rule(rule_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> None:
    alerts.delete_rule(session, principal.workspace_id, rule_id)


# --- the dashboard (seed 1.1-1.3) -----------------------------------------------------

dashboard_router = APIRouter(prefix="/api/v1/dashboard", tags=["monitoring"])


@dashboard_router.get(
    "/stats",
    summary="active_models, average_accuracy (mean of 100 - validation sMAPE over trained and deployed models), total_datasets, active_alerts and trends",
)
def dashboard_stats(principal: WorkspaceReader, session: DbSession) -> dict[str, Any]:
    return dashboard.stats(session, principal.workspace_id, utcnow())


@dashboard_router.get("/activity", summary="Recent events of the workspace: datasets uploaded, models trained, jobs failed, alerts raised, streams started")
def dashboard_activity(principal: WorkspaceReader, session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    return {"activities": dashboard.activity(session, principal.workspace_id, limit)}


@dashboard_router.get("/tasks", summary="Recommended next steps, derived from the workspace's state, most urgent first")
def dashboard_tasks(principal: WorkspaceReader, session: DbSession) -> dict[str, Any]:
    return {"tasks": dashboard.tasks(session, principal.workspace_id)}
