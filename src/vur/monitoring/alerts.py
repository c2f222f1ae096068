"""Alerts: rules, the evaluator that raises and clears alerts, and what people do with them.

The evaluator runs in each API process every `alert_check_seconds`. It raises an alert
for a job that failed, a stream that failed or has read nothing new for a while, a
model whose live error passed its rule's threshold, and a deployed model whose recent
data drifted from its training data (drift.py); it resolves the stalled-stream, error
and drift alerts itself when their condition clears. A condition is one `key`, so while it
lasts it holds one alert (open or acknowledged), however often it is checked.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vur.core.db import Database, utcnow
from vur.core.events import Event, publish_after_commit
from vur.core.periodic import PeriodicTask
from vur.core.repository import get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.jobs.models import Job, JobStatus
from vur.monitoring.drift import drift_report
from vur.monitoring.exceptions import AlertNotFound, AlertRuleNotFound, IllegalAlertChange
from vur.monitoring.models import Alert, AlertRule
from vur.monitoring.schemas import AlertRuleCreate
from vur.predictions.models import Prediction, PredictionStream
from vur.predictions.service import error_from_sums
from vur.registry.models import ModelStatus, RegisteredModel
from vur.registry.service import get_model
from vur.settings import Settings

ACTIVE = ("open", "acknowledged")
# Failed jobs older than this when first seen raise nothing (a fresh install would
# otherwise alert on history).
JOB_LOOKBACK = timedelta(days=1)
# A running stream is stalled after this many intervals without a new row (and at least
# STALL_MIN_SECONDS).
STALL_INTERVALS = 10
STALL_MIN_SECONDS = 60.0


# --- rules and alerts as people see them ------------------------------------------------


def create_rule(session: Session, workspace_id: uuid.UUID, body: AlertRuleCreate) -> AlertRule:
    get_model(session, body.model_id, workspace_id)  # 404 for a model of another workspace
    rule = AlertRule(workspace_id=workspace_id, kind="error_threshold", **body.model_dump())
    session.add(rule)
    session.flush()
    return rule


def list_rules(session: Session, workspace_id: uuid.UUID) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).where(AlertRule.workspace_id == workspace_id).order_by(AlertRule.created_at.desc())))


def delete_rule(session: Session, workspace_id: uuid.UUID, rule_id: uuid.UUID) -> None:
    session.delete(get_scoped(session, AlertRule, rule_id, workspace_id, AlertRuleNotFound))


def get_alert(session: Session, alert_id: uuid.UUID, workspace_id: uuid.UUID) -> Alert:
    return get_scoped(session, Alert, alert_id, workspace_id, AlertNotFound)


def list_alerts(session: Session, workspace_id: uuid.UUID, *, status: str | None, kind: str | None, limit: int, offset: int) -> tuple[list[Alert], int]:
    stmt = select(Alert).where(Alert.workspace_id == workspace_id)
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    return paginate(session, stmt.order_by(Alert.created_at.desc(), Alert.id), limit=limit, offset=offset)


def acknowledge(session: Session, alert: Alert, user_id: uuid.UUID) -> Alert:
    if alert.status != "open":
        raise IllegalAlertChange(f"Only an open alert can be acknowledged; this one is {alert.status}", {"status": alert.status})
    alert.status, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", utcnow(), user_id
    session.flush()
    return alert


def resolve(session: Session, alert: Alert) -> Alert:
    if alert.status == "resolved":
        raise IllegalAlertChange("The alert is already resolved", {"status": alert.status})
    alert.status, alert.resolved_at = "resolved", utcnow()
    session.flush()
    return alert


# --- the evaluator -------------------------------------------------------------------------


def alert_evaluator(database: Database, store: ArtifactStore, settings: Settings) -> PeriodicTask:
    """Every `alert_check_seconds`; drift (which loads fitted models and reads recent
    predictions) only every `drift_check_seconds`."""
    drift_checked = -math.inf

    def check() -> None:
        nonlocal drift_checked
        drift_due = time.monotonic() - drift_checked >= settings.drift_check_seconds
        with database.session() as session:
            evaluate(session, utcnow(), store if drift_due else None)
        if drift_due:
            drift_checked = time.monotonic()

    return PeriodicTask("vur-alert-evaluator", settings.alert_check_seconds, check)


def evaluate(session: Session, now: datetime, store: ArtifactStore | None = None) -> list[Alert]:
    """One pass over every workspace; the alerts it raised. Drift of deployed models is
    checked when the artifact store (their fitted models) is given."""
    raised = [*_failed_jobs(session, now), *_streams(session, now), *_error_rules(session, now)]
    if store is not None:
        raised += _drift(session, store, now)
    for alert in raised:
        publish_after_commit(session, Event("alerts", "alert.raised", _event(alert), str(alert.workspace_id)))
    return raised


def _active(session: Session, key: str) -> Alert | None:
    return session.scalar(select(Alert).where(Alert.key == key, Alert.status.in_(ACTIVE)).limit(1))


def _ever_raised(session: Session, key: str) -> bool:
    return session.scalar(select(Alert.id).where(Alert.key == key).limit(1)) is not None


def _raise(session: Session, **fields: object) -> Alert:
    alert = Alert(**fields)
    session.add(alert)
    session.flush()
    return alert


def _failed_jobs(session: Session, now: datetime) -> list[Alert]:
    failed = session.scalars(select(Job).where(Job.status == JobStatus.failed, Job.workspace_id.is_not(None), Job.finished_at >= now - JOB_LOOKBACK))
    raised = []
    for job in failed:
        key = f"job_failed:{job.id}"
        if _ever_raised(session, key):
            continue  # one alert per failed job, even after it is resolved
        raised.append(
            _raise(
                session,
                workspace_id=job.workspace_id,
                kind="job_failed",
                key=key,
                severity="error",
                title=f"Job {job.type} failed",
                message=job.error or "the job failed without a message",
                subject_type="job",
                subject_id=job.id,
                details={"job_type": job.type, "attempts": job.attempts},
            )
        )
    return raised


def _streams(session: Session, now: datetime) -> list[Alert]:
    raised = []
    for stream in session.scalars(select(PredictionStream).where(PredictionStream.status.in_(("running", "failed")))):
        if stream.status == "failed":
            key = f"stream_failed:{stream.id}"
            if not _ever_raised(session, key):
                raised.append(_stream_alert(session, stream, key, "stream_failed", "error", stream.last_error or "unknown error"))  # the title says it failed
            continue
        key = f"stream_stalled:{stream.id}"
        quiet_for = (now - (stream.last_new_rows_at or stream.created_at)).total_seconds()
        allowed = max(STALL_INTERVALS * stream.interval_seconds, STALL_MIN_SECONDS)
        active = _active(session, key)
        if quiet_for > allowed and active is None:
            raised.append(_stream_alert(session, stream, key, "stream_stalled", "warning", f"No new rows for {quiet_for:.0f} s (interval {stream.interval_seconds:g} s)"))
        elif quiet_for <= allowed and active is not None:
            active.status, active.resolved_at = "resolved", now
    return raised


def _stream_alert(session: Session, stream: PredictionStream, key: str, kind: str, severity: str, message: str) -> Alert:
    return _raise(
        session,
        workspace_id=stream.workspace_id,
        kind=kind,
        key=key,
        severity=severity,
        title=f"Prediction stream {'failed' if kind == 'stream_failed' else 'stalled'}",
        message=message,
        subject_type="stream",
        subject_id=stream.id,
        details={"model_id": str(stream.model_id), "database_id": str(stream.database_id), "rows_read": stream.rows_read},
    )


def live_error(session: Session, model_id: uuid.UUID, since: datetime) -> tuple[int, float | None, float | None]:
    """Scored points, MAE and RMSE of a model's predictions made since `since`."""
    points, absolute, squared = session.execute(
        select(func.coalesce(func.sum(Prediction.scored_points), 0), func.sum(Prediction.absolute_error_sum), func.sum(Prediction.squared_error_sum)).where(
            Prediction.model_id == model_id, Prediction.created_at >= since
        )
    ).one()
    return int(points), *error_from_sums(int(points), absolute, squared)


def _error_rules(session: Session, now: datetime) -> list[Alert]:
    raised = []
    for rule in session.scalars(select(AlertRule).where(AlertRule.kind == "error_threshold", AlertRule.enabled.is_(True))):
        points, mae, rmse = live_error(session, rule.model_id, now - timedelta(hours=rule.window_hours))  # type: ignore[arg-type]
        error = mae if rule.metric == "mae" else rmse
        key = f"error_threshold:{rule.id}"
        active = _active(session, key)
        if error is not None and error > rule.threshold and active is None:
            raised.append(
                _raise(
                    session,
                    workspace_id=rule.workspace_id,
                    rule_id=rule.id,
                    kind="error_threshold",
                    key=key,
                    severity=rule.severity,
                    title=f"Live {rule.metric.upper()} above {rule.threshold:g}",
                    message=f"{rule.metric.upper()} {error:.4g} over {points} scored points in the last {rule.window_hours} h",
                    subject_type="model",
                    subject_id=rule.model_id,
                    details={"metric": rule.metric, "value": error, "threshold": rule.threshold, "scored_points": points},
                )
            )
        elif error is not None and error <= rule.threshold and active is not None:
            active.status, active.resolved_at = "resolved", now
    return raised


def _drift(session: Session, store: ArtifactStore, now: datetime) -> list[Alert]:
    raised = []
    # Forecasters only: drift compares forecasts and observed values with training data.
    for model in session.scalars(select(RegisteredModel).where(RegisteredModel.status == ModelStatus.deployed, RegisteredModel.kind == "forecaster")):
        report = drift_report(session, store, model, now)
        key = f"drift:{model.id}"
        active = _active(session, key)
        if report["drifted"] and active is None:
            drifted = [part for part in report["features"] if part["drifted"]]
            shown = ", ".join(f"{part['name']} PSI {part['psi']:.3g}, KS p {part['ks_pvalue']:.2g}" for part in drifted)
            raised.append(
                _raise(
                    session,
                    workspace_id=model.workspace_id,
                    kind="drift",
                    key=key,
                    severity="warning",
                    title=f"{model.name} sees data unlike its training data",
                    message=shown,
                    subject_type="model",
                    subject_id=model.id,
                    details={"features": report["features"], "version": report["version"]},
                )
            )
        elif not report["drifted"] and active is not None:
            active.status, active.resolved_at = "resolved", now
    return raised


def _event(alert: Alert) -> dict[str, object]:
    return {
        "id": str(alert.id),
        "kind": alert.kind,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "subject_type": alert.subject_type,
        "subject_id": str(alert.subject_id) if alert.subject_id else None,
    }
