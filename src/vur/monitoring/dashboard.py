"""The dashboard (seed 1.1-1.3): figures, the activity feed and the recommended next
steps, every one computed from the workspace's own records when asked.

Accuracy of a model version is 100 - its validation sMAPE (%), floored at 0; the
dashboard's `average_accuracy` is the mean over the active (trained or deployed) models
whose metrics include sMAPE. The activity feed is read from the records themselves
(datasets, model versions, failed jobs, alerts, streams), so it cannot disagree with
them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vur.datasets.models import Dataset
from vur.jobs.models import Job, JobStatus
from vur.monitoring.models import Alert
from vur.predictions.models import PredictionStream
from vur.registry.models import ModelStatus, ModelVersion, RegisteredModel

ACTIVE_MODELS = (ModelStatus.trained, ModelStatus.deployed)


def accuracy(metrics: dict[str, Any]) -> float | None:
    smape = metrics.get("smape")
    return max(0.0, 100.0 - float(smape)) if isinstance(smape, int | float) else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def stats(session: Session, workspace_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    models = session.execute(select(RegisteredModel.status, RegisteredModel.metrics).where(RegisteredModel.workspace_id == workspace_id)).all()
    active = [metrics for status, metrics in models if status in ACTIVE_MODELS]
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month_start = (month_start - timedelta(days=1)).replace(day=1)
    this_month = _version_accuracy(session, workspace_id, month_start, now)
    last_month = _version_accuracy(session, workspace_id, last_month_start, month_start)
    first_versions = select(ModelVersion.model_id, func.min(ModelVersion.created_at).label("first")).where(ModelVersion.workspace_id == workspace_id).group_by(ModelVersion.model_id).subquery()
    models_this_month = session.scalar(select(func.count()).select_from(first_versions).where(first_versions.c.first >= month_start))
    datasets = session.scalar(select(func.count()).select_from(Dataset).where(Dataset.workspace_id == workspace_id))
    datasets_this_week = session.scalar(select(func.count()).select_from(Dataset).where(Dataset.workspace_id == workspace_id, Dataset.created_at >= now - timedelta(days=7)))
    alerts_active = session.scalar(select(func.count()).select_from(Alert).where(Alert.workspace_id == workspace_id, Alert.status.in_(("open", "acknowledged"))))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    alerts_today = session.scalar(select(func.count()).select_from(Alert).where(Alert.workspace_id == workspace_id, Alert.created_at >= midnight))
    change = None if this_month is None or last_month is None else this_month - last_month
    return {
        "active_models": len(active),
        "average_accuracy": _mean([a for a in (accuracy(m) for m in active) if a is not None]),
        "total_datasets": datasets,
        "active_alerts": alerts_active,
        "trends": {
            "models_this_month": f"+{models_this_month}",
            "accuracy_vs_last_month": "n/a" if change is None else f"{change:+.1f}%",
            "datasets_this_week": f"+{datasets_this_week}",
            "new_alerts_today": str(alerts_today),
        },
    }


def _version_accuracy(session: Session, workspace_id: uuid.UUID, start: datetime, end: datetime) -> float | None:
    metrics = session.scalars(select(ModelVersion.metrics).where(ModelVersion.workspace_id == workspace_id, ModelVersion.created_at >= start, ModelVersion.created_at < end))
    return _mean([a for a in (accuracy(m) for m in metrics) if a is not None])


def activity(session: Session, workspace_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` events of the workspace, newest first, in the seed's shape
    (id, type, message, timestamp, status)."""
    events: list[dict[str, Any]] = []

    def add(kind: str, subject: uuid.UUID, message: str, at: datetime, status: str) -> None:
        events.append({"id": f"{kind}:{subject}", "type": kind, "message": message, "timestamp": at.astimezone(UTC).isoformat(), "status": status})

    for d in session.scalars(select(Dataset).where(Dataset.workspace_id == workspace_id).order_by(Dataset.created_at.desc()).limit(limit)):
        add("dataset_uploaded", d.id, f"Dataset {d.name} uploaded ({d.rows_count:,} rows)", d.created_at, "success")
    versions = session.execute(
        select(ModelVersion, RegisteredModel.name).join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id).where(ModelVersion.workspace_id == workspace_id).order_by(ModelVersion.created_at.desc()).limit(limit)
    ).all()
    for version, name in versions:
        add("model_trained", version.id, f"Model {name} trained (version {version.number}, {version.algorithm})", version.created_at, "success")
    failed = session.scalars(select(Job).where(Job.workspace_id == workspace_id, Job.status == JobStatus.failed).order_by(Job.finished_at.desc()).limit(limit))
    for job in failed:
        add("job_failed", job.id, f"Job {job.type} failed: {job.error or 'no message'}"[:300], job.finished_at or job.created_at, "error")
    for alert in session.scalars(select(Alert).where(Alert.workspace_id == workspace_id).order_by(Alert.created_at.desc()).limit(limit)):
        add("alert_raised", alert.id, f"{alert.title}: {alert.message}"[:300], alert.created_at, "warning" if alert.severity != "error" else "error")
    for stream in session.scalars(select(PredictionStream).where(PredictionStream.workspace_id == workspace_id).order_by(PredictionStream.created_at.desc()).limit(limit)):
        add("stream_started", stream.id, f"Prediction stream started (every {stream.interval_seconds:g} s)", stream.created_at, "info")
    events.sort(key=lambda e: e["timestamp"], reverse=True)
    return events[:limit]


def tasks(session: Session, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
    """What to do next, most urgent first, each derived from the state it names."""
    found: list[dict[str, Any]] = []

    def add(kind: str, priority: str, title: str, description: str, subject_type: str, subject_id: uuid.UUID) -> None:
        found.append({"id": f"{kind}:{subject_id}", "type": kind, "priority": priority, "title": title, "description": description, "subject": {"type": subject_type, "id": str(subject_id)}})

    for stream in session.scalars(select(PredictionStream).where(PredictionStream.workspace_id == workspace_id, PredictionStream.status == "failed")):
        add("fix_stream", "high", "Fix a failed prediction stream", stream.last_error or "the stream stopped after repeated failures", "stream", stream.id)
    for alert in session.scalars(select(Alert).where(Alert.workspace_id == workspace_id, Alert.status == "open", Alert.kind.in_(("error_threshold", "stream_stalled")))):
        kind = "retrain_model" if alert.kind == "error_threshold" else "check_stream"
        add(kind, "high", "Retrain a model whose live error is too high" if kind == "retrain_model" else "Check a stalled stream", alert.message, alert.subject_type, alert.subject_id)  # type: ignore[arg-type]
    for model in session.scalars(select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id, RegisteredModel.status == ModelStatus.failed)):
        add("inspect_failed_training", "medium", f"Look at the failed training of {model.name}", "its job's error says why; fix the configuration and train again", "model", model.id)
    for model in session.scalars(select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id, RegisteredModel.status == ModelStatus.configured)):
        add("train_model", "medium", f"Train {model.name}", "configured but never trained", "model", model.id)
    modelled = select(RegisteredModel.dataset_id).where(RegisteredModel.workspace_id == workspace_id, RegisteredModel.dataset_id.is_not(None))
    idle = select(Dataset).where(Dataset.workspace_id == workspace_id, Dataset.kind == "tabular", Dataset.id.not_in(modelled)).order_by(Dataset.created_at.desc()).limit(20)
    for dataset in session.scalars(idle):
        add("train_on_dataset", "low", f"Train a model on {dataset.name}", "no model uses this dataset yet", "dataset", dataset.id)
    return found
