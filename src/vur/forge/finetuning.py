"""Training jobs: fine-tuning of registered LLMs at a provider, and, in the same shape, the
forecasting and ranking trainings of the jobs table (seed 004's /training-jobs lists
training runs of every kind).

A fine-tuning job is created pending; the poller (finetune_poller.py) submits it, follows
it and records the outcome. The model is `training` while a job of it is pending or
running; a completed job makes it `trained` with the provider's model id in
`config.fine_tuned_model` (deploy it with POST /api/v1/models/{id}/deploy); a failed or
cancelled one puts it back as it was (trained if an earlier fine-tune succeeded, else
registered).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, literal, select, union_all, update
from sqlalchemy.orm import Session

from vur.core.db import utcnow
from vur.forecasting.service import TRAIN_JOB
from vur.forge import exports
from vur.forge.exceptions import InvalidTrainingJob, ModelBusyTraining, TrainingJobFinished, TrainingJobNotFound
from vur.forge.finetune_providers import ACCEPTED
from vur.forge.models import DatasetExport, FineTuningJob
from vur.forge.training_schemas import TrainingJobCreate, TrainingJobRead
from vur.insights.service import RANK_JOB
from vur.jobs import service as jobs
from vur.jobs.models import Job, JobStatus
from vur.registry import service as registry
from vur.registry.exceptions import ModelArchived
from vur.registry.models import ModelStatus, RegisteredModel

ACTIVE = ("pending", "running")
# Trainings of the jobs table listed here, and their statuses in seed 004's words.
JOB_TYPES = (TRAIN_JOB, RANK_JOB)
FROM_JOB_STATUS = {JobStatus.queued: "pending", JobStatus.running: "running", JobStatus.succeeded: "completed", JobStatus.failed: "failed", JobStatus.cancelled: "cancelled"}
TO_JOB_STATUS = {ours: theirs for theirs, ours in FROM_JOB_STATUS.items()}


def create_job(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, body: TrainingJobCreate) -> FineTuningJob:
    model = registry.get_model(session, body.model_id, workspace_id, for_update=True)
    llm = registry.get_llm(session, model)
    if llm is None:
        raise InvalidTrainingJob(f"Model '{model.id}' is a {model.kind}: only registered LLMs are fine-tuned", {"model_id": "register one with POST /api/v1/models"})
    if model.status == ModelStatus.training:
        raise ModelBusyTraining(f"Model '{model.id}' is already training", {"status": model.status.value})
    if model.status == ModelStatus.archived:
        raise ModelArchived(f"Model '{model.id}' is archived; restore it to train it", {"status": "archived"})
    dataset = exports.instruction_dataset(session, body.dataset_id, workspace_id)
    export = _chosen_export(session, dataset, body.dataset_export_id, workspace_id)
    hyperparameters = body.hyperparameters.model_dump(exclude_none=True)
    refused = sorted(set(hyperparameters) - ACCEPTED[body.provider])
    if refused:
        raise InvalidTrainingJob(
            f"{body.provider} does not take {', '.join(refused)}", {f"hyperparameters.{name}": f"{body.provider} takes {', '.join(sorted(ACCEPTED[body.provider]))}" for name in refused}
        )
    job = FineTuningJob(
        workspace_id=workspace_id,
        created_by=user_id,
        model_id=model.id,
        dataset_id=dataset.id,
        dataset_export_id=export.id,
        provider=body.provider,
        base_model=llm.base_model,
        method="dpo" if export.layout == "preference" else "sft",
        status="pending",
        hyperparameters={**hyperparameters, **({"suffix": body.suffix} if body.suffix else {})},
        metrics={},
        next_poll_at=utcnow(),
    )
    session.add(job)
    model.status = ModelStatus.training
    session.flush()
    return job


def _chosen_export(session: Session, dataset: Any, export_id: uuid.UUID | None, workspace_id: uuid.UUID) -> DatasetExport:
    export = exports.get_export(session, export_id, workspace_id) if export_id is not None else exports.latest_export(session, dataset)
    if export is None:
        raise InvalidTrainingJob(f"Dataset '{dataset.id}' has no export to train on", {"dataset_export_id": f"export it first: POST /api/v1/datasets/{dataset.id}/export"})
    if export.dataset_id != dataset.id:
        raise InvalidTrainingJob("The export is not one of this dataset", {"dataset_export_id": f"an export of dataset {dataset.id}"})
    if export.format != "jsonl":
        raise InvalidTrainingJob(f"Fine-tuning takes a JSONL export; this one is {export.format}", {"dataset_export_id": "export the dataset with format jsonl"})
    return export


# --- reading ------------------------------------------------------------------------------


def get_job(session: Session, job_id: uuid.UUID, workspace_id: uuid.UUID) -> TrainingJobRead:
    return read_jobs(session, [_find(session, job_id, workspace_id)])[0]


def _find(session: Session, job_id: uuid.UUID, workspace_id: uuid.UUID) -> FineTuningJob | Job:
    found = session.scalar(select(FineTuningJob).where(FineTuningJob.id == job_id, FineTuningJob.workspace_id == workspace_id))
    found = found or session.scalar(select(Job).where(Job.id == job_id, Job.workspace_id == workspace_id, Job.type.in_(JOB_TYPES)))
    if found is None:
        raise TrainingJobNotFound.for_id("Training job", job_id)
    return found


def list_jobs(
    session: Session, workspace_id: uuid.UUID, *, model_id: uuid.UUID | None, status: str | None, limit: int, offset: int
) -> tuple[list[TrainingJobRead], int]:
    """Fine-tuning jobs and trainings of the jobs table together, newest first."""
    tuned = select(FineTuningJob.id, FineTuningJob.created_at, literal("fine_tuning").label("source")).where(FineTuningJob.workspace_id == workspace_id)
    trained = select(Job.id, Job.created_at, literal("job").label("source")).where(Job.workspace_id == workspace_id, Job.type.in_(JOB_TYPES))
    if model_id is not None:
        tuned = tuned.where(FineTuningJob.model_id == model_id)
        # A forecasting job names its model; a ranking job is its model's latest training.
        of_model = select(RegisteredModel.training_job_id).where(RegisteredModel.id == model_id, RegisteredModel.training_job_id.is_not(None))
        trained = trained.where((Job.payload["model_id"].as_string() == str(model_id)) | Job.id.in_(of_model))
    if status is not None:
        tuned = tuned.where(FineTuningJob.status == status)
        trained = trained.where(Job.status == TO_JOB_STATUS[status])
    both = union_all(tuned, trained).subquery()
    total = session.scalar(select(func.count()).select_from(both)) or 0
    page = session.execute(select(both.c.id, both.c.source).order_by(both.c.created_at.desc(), both.c.id).limit(limit).offset(offset)).all()
    by_source: dict[str, list[uuid.UUID]] = {"fine_tuning": [], "job": []}
    for id_, source in page:
        by_source[source].append(id_)
    rows: dict[uuid.UUID, FineTuningJob | Job] = {row.id: row for row in session.scalars(select(FineTuningJob).where(FineTuningJob.id.in_(by_source["fine_tuning"])))}
    rows |= {row.id: row for row in session.scalars(select(Job).where(Job.id.in_(by_source["job"])))}
    return read_jobs(session, [rows[id_] for id_, _ in page]), total


def read_jobs(session: Session, rows: list[FineTuningJob | Job]) -> list[TrainingJobRead]:
    job_ids = [row.id for row in rows if isinstance(row, Job)]
    # The model each training of the jobs table trained: named in its payload, or the model
    # whose latest training it is.
    named = {uuid.UUID(row.payload["model_id"]) for row in rows if isinstance(row, Job) and "model_id" in row.payload}
    models = list(session.scalars(select(RegisteredModel).where(RegisteredModel.id.in_(named) | RegisteredModel.training_job_id.in_(job_ids)))) if job_ids else []
    by_id = {m.id: m for m in models}
    by_job = {m.training_job_id: m for m in models if m.training_job_id is not None}
    return [_read_fine_tuning(row) if isinstance(row, FineTuningJob) else _read_job(row, _model_of(row, by_id, by_job)) for row in rows]


def _model_of(job: Job, by_id: dict[uuid.UUID, RegisteredModel], by_job: dict[uuid.UUID | None, RegisteredModel]) -> RegisteredModel | None:
    return by_id.get(uuid.UUID(job.payload["model_id"])) if "model_id" in job.payload else by_job.get(job.id)


def _read_fine_tuning(job: FineTuningJob) -> TrainingJobRead:
    return TrainingJobRead(
        id=job.id,
        type="fine_tuning",
        model_id=job.model_id,
        dataset_id=job.dataset_id,
        dataset_export_id=job.dataset_export_id,
        status=job.status,
        provider=job.provider,
        external_job_id=job.external_job_id,
        hyperparameters=job.hyperparameters,
        metrics=job.metrics,
        error_message=job.error_message,
        cancel_requested=job.cancel_requested,
        started_at=job.started_at,
        completed_at=job.completed_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def _read_job(job: Job, model: RegisteredModel | None) -> TrainingJobRead:
    dataset_id = job.payload.get("dataset_id") or (model.dataset_id if model is not None else None)
    result = job.result or {}
    return TrainingJobRead(
        id=job.id,
        type=job.type,
        model_id=model.id if model is not None else None,
        dataset_id=dataset_id,
        dataset_export_id=None,
        status=FROM_JOB_STATUS[job.status],
        provider="vur",
        external_job_id=None,
        hyperparameters=model.hyperparameters if model is not None else {},
        metrics=result.get("metrics") or {},
        error_message=job.error,
        cancel_requested=job.cancel_requested,
        started_at=job.started_at,
        completed_at=job.finished_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


# --- cancelling ---------------------------------------------------------------------------


def cancel(session: Session, job_id: uuid.UUID, workspace_id: uuid.UUID) -> TrainingJobRead:
    """A fine-tuning job whose file has not reached the provider is cancelled at once; any
    other gets `cancel_requested`, and the poller cancels it there at its next pass (or
    withdraws it, when no job was made from the file). A training of
    the jobs table is cancelled as /api/v1/jobs/{id}/cancel does it."""
    found = _find(session, job_id, workspace_id)
    if isinstance(found, Job):
        jobs.request_cancel(session, found)
        return read_jobs(session, [found])[0]
    if found.status not in ACTIVE:
        raise TrainingJobFinished(f"Training job '{found.id}' already {found.status}", {"status": found.status})
    now = utcnow()
    # Guarded: the poller may be submitting it this very moment (it then cancels what it made).
    at_once = session.execute(
        update(FineTuningJob)
        .where(FineTuningJob.id == found.id, FineTuningJob.status == "pending", FineTuningJob.external_file_id.is_(None))
        .values(status="cancelled", cancel_requested=True, completed_at=now, next_poll_at=None, error_message="Cancelled before it reached the provider", updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if at_once:
        model = session.get(RegisteredModel, found.model_id, with_for_update=True)
        settle_model(model, "cancelled", None)
    else:
        session.execute(
            update(FineTuningJob).where(FineTuningJob.id == found.id).values(cancel_requested=True, updated_at=now).execution_options(synchronize_session=False)
        )
    session.flush()
    session.refresh(found)
    return _read_fine_tuning(found)


def settle_model(model: RegisteredModel | None, status: str, fine_tuned_model: str | None) -> None:
    """The model of a job that just ended: trained with the provider's model when it
    completed, else back to where it was. Left alone if it is no longer training."""
    if model is None or model.status != ModelStatus.training:
        return
    if status == "completed" and fine_tuned_model:
        model.config = {**model.config, "fine_tuned_model": fine_tuned_model}
        model.trained_at = utcnow()
    model.status = registry.resting_status(model)
