"""The run job: every step of a pipeline in order, as one job, each step in its own
transaction, with progress reported per step and the pipeline's state kept as it goes.
Training runs the training job's own function inside this job."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from vur.core.db import Database, get_database
from vur.core.storage import LocalArtifactStore
from vur.forecasting.training import train_forecaster
from vur.jobs.registry import job
from vur.jobs.runner import JobCancelled, JobContext
from vur.pipelines import service
from vur.pipelines.models import Pipeline
from vur.pipelines.schemas import STEP_NAMES

# Each step's share of the run's progress, in percent: training is most of the work.
STEP_SHARES = {"upload": 2, "preview": 2, "split": 4, "preprocessing": 8, "features": 8, "model": 6, "training": 70}


class StepContext:
    """The run's context as one step's code sees it: the step's 0-100 progress maps onto
    its share of the run's, and every report names the step."""

    def __init__(self, ctx: JobContext, step: str, start: float, end: float) -> None:
        self._ctx, self._step, self._start, self._end = ctx, step, start, end
        self.job_id, self.workspace_id, self.settings = ctx.job_id, ctx.workspace_id, ctx.settings

    def progress(self, percent: float, message: str | None = None, **data: Any) -> None:
        shown = f"{self._step}: {message}" if message else None
        self._ctx.progress(self._start + (self._end - self._start) * percent / 100, shown, step=self._step, **data)

    def log(self, message: str) -> None:
        self._ctx.log(f"{self._step}: {message}")

    def publish(self, topic: str, type_: str, data: dict[str, Any]) -> None:
        self._ctx.publish(topic, type_, data)


class StepFailed(Exception):
    """Ends the job with an error that names the step and says what went wrong."""


def _pipeline(session: Session, pipeline_id: uuid.UUID) -> Pipeline:
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise LookupError(f"pipeline {pipeline_id} no longer exists")
    return pipeline


@job(service.RUN_JOB, on_unsuccessful=service.run_ended_unfinished)
def run_pipeline(ctx: JobContext, pipeline_id: str, user_id: str) -> dict[str, Any]:
    database = get_database(ctx.settings.resolved_database_url)
    store = LocalArtifactStore(ctx.settings.artifacts_dir)
    run_id, runner_id = uuid.UUID(pipeline_id), uuid.UUID(user_id)
    start = 0.0
    for number, name in enumerate(STEP_NAMES, start=1):
        end = start + STEP_SHARES[name]
        ctx.progress(start, f"{name}: step {number}/{len(STEP_NAMES)}", step=name)
        with database.session() as session:
            service.mark_step(session, _pipeline(session, run_id), name, "running")
        try:
            if name == "training":
                status = _train(StepContext(ctx, name, start, end), database, run_id)
            else:
                with database.session() as session:
                    pipeline = _pipeline(session, run_id)
                    status, output = service.execute_step(service.StepWork(session, store, pipeline, runner_id), name)
                    service.mark_step(session, pipeline, name, status, output)
        except JobCancelled:
            raise  # the job's on_unsuccessful hook puts the step back to pending
        except Exception as exc:
            error = service.describe(exc)
            with database.session() as session:
                service.fail_step(session, _pipeline(session, run_id), name, error, ctx.job_id)
            raise StepFailed(f"{name}: {error}") from exc
        ctx.progress(end, f"{name}: {status}", step=name)
        start = end
    with database.session() as session:
        pipeline = _pipeline(session, run_id)
        service.finish_run(session, pipeline)
        return {"pipeline_id": pipeline_id, "dataset_id": str(pipeline.dataset_id), "model_id": str(pipeline.model_id)}


def _train(ctx: StepContext, database: Database, pipeline_id: uuid.UUID) -> str:
    with database.session() as session:
        model_id = service.begin_training(session, _pipeline(session, pipeline_id), ctx.job_id)
    train_forecaster(ctx, str(model_id))  # type: ignore[arg-type]  (a JobContext as the step sees it)
    with database.session() as session:
        service.mark_step(session, _pipeline(session, pipeline_id), "training", "completed", {"model_id": str(model_id)})
    return "completed"
