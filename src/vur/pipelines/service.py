"""Pipelines: the seven steps kept in order, done one at a time (`advance`) or all in one
job (`start_run`, see jobs.py), exported as a signed document and imported elsewhere.

Each step calls the service that its own endpoint calls (datasets, forecasting), so a
pipeline does exactly what a user clicking through the studio would.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.db import utcnow
from vur.core.errors import UnprocessableEntity, VurError
from vur.core.repository import get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.datasets import service as datasets
from vur.datasets.models import Dataset
from vur.datasets.schemas import FeatureEngineering, PreprocessRequest, SplitRequest
from vur.forecasting import service as forecasting
from vur.forecasting.algorithms import get_algorithm
from vur.forecasting.exceptions import AlreadyTraining, InvalidTrainingConfig, UnknownAlgorithm
from vur.forecasting.schemas import TrainRequest
from vur.jobs import service as jobs
from vur.jobs.models import Job, JobStatus
from vur.pipelines.exceptions import InvalidDocument, InvalidPipeline, PipelineBusy, PipelineNotFound, StepAlreadyDone, StepOutOfOrder
from vur.pipelines.models import Pipeline, PipelineStatus
from vur.pipelines.schemas import DONE, FORMAT, STEP_NAMES, VERSION, ModelStepConfig, PipelineContent, PipelineCreate, PipelineDocument, PipelineUpdate
from vur.registry import service as registry
from vur.registry.bundles import sign, signature_matches
from vur.registry.models import ModelStatus, RegisteredModel

RUN_JOB = "pipelines.run"
STEP_INDEX = {name: index for index, name in enumerate(STEP_NAMES)}


# --- reading and writing -------------------------------------------------------------


def get_pipeline(session: Session, pipeline_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> Pipeline:
    return get_scoped(session, Pipeline, pipeline_id, workspace_id, PipelineNotFound, for_update=for_update)


def list_pipelines(session: Session, workspace_id: uuid.UUID, *, status: PipelineStatus | None, limit: int, offset: int) -> tuple[list[Pipeline], int]:
    stmt = select(Pipeline).where(Pipeline.workspace_id == workspace_id)
    if status is not None:
        stmt = stmt.where(Pipeline.status == status)
    return paginate(session, stmt.order_by(Pipeline.created_at.desc()), limit=limit, offset=offset)


def create_pipeline(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, body: PipelineCreate) -> Pipeline:
    steps = [{"name": name, "config": _stored(getattr(body.steps, name, None)), "status": "pending", "output": {}} for name in STEP_NAMES]
    _check_given(session, workspace_id, steps)
    return _add(session, workspace_id, user_id, body.name, body.description, steps)


def update_pipeline(session: Session, pipeline: Pipeline, body: PipelineUpdate) -> Pipeline:
    _not_running(pipeline)
    if body.name is not None:
        pipeline.name = body.name
    if "description" in body.model_fields_set:
        pipeline.description = body.description
    if body.steps is not None:
        steps = copy.deepcopy(pipeline.steps)
        changed = []
        for name in body.steps.model_fields_set:
            config = _stored(getattr(body.steps, name))
            if steps[STEP_INDEX[name]]["config"] != config:
                steps[STEP_INDEX[name]]["config"] = config
                changed.append(STEP_INDEX[name])
        if changed:
            _check_given(session, pipeline.workspace_id, [steps[index] for index in changed])
            _reset_from(steps, min(changed))
            pipeline.steps = steps
            _refresh(session, pipeline)
            # A failed run's error no longer describes the pipeline.
            pipeline.status, pipeline.error = _resting_status(pipeline.steps), None
    session.flush()
    return pipeline


def delete_pipeline(session: Session, pipeline: Pipeline) -> None:
    """The pipeline only: the datasets and models its steps made stay in the workspace."""
    _not_running(pipeline)
    session.delete(pipeline)
    session.flush()


def _add(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, name: str, description: str | None, steps: list[dict[str, Any]]) -> Pipeline:
    pipeline = Pipeline(workspace_id=workspace_id, created_by=user_id, name=name, description=description, steps=steps)
    session.add(pipeline)
    _refresh(session, pipeline)
    pipeline.status = _resting_status(steps)
    session.flush()
    return pipeline


def _stored(config: BaseModel | None) -> dict[str, Any] | None:
    # What the caller gave, not the defaults: a later default applies when the step runs.
    return None if config is None else config.model_dump(mode="json", exclude_unset=True)


def _not_running(pipeline: Pipeline) -> None:
    if pipeline.status == PipelineStatus.running:
        raise PipelineBusy(f"Pipeline '{pipeline.id}' is running", {"job_id": str(pipeline.last_job_id)})


def _check_given(session: Session, workspace_id: uuid.UUID, steps: list[dict[str, Any]]) -> None:
    """What a step's configuration is refused for as soon as it is given, not when the
    pipeline runs: a dataset the workspace does not have, a model step configure refuses."""
    _check_references(session, workspace_id, steps)
    for step in steps:
        if step["name"] == "model" and step["config"] is not None:
            _check_model_step(ModelStepConfig.model_validate(step["config"]))


def _check_references(session: Session, workspace_id: uuid.UUID, steps: list[dict[str, Any]]) -> None:
    """The steps' configurations may name only datasets of the workspace."""
    problems = {
        f"steps.{step['name']}.config.dataset_id": "no dataset with this id in the workspace"
        for step in steps
        if (dataset_id := (step["config"] or {}).get("dataset_id")) and not _visible(session, Dataset, dataset_id, workspace_id)
    }
    if problems:
        raise InvalidPipeline("A step refers to a dataset this workspace does not have", problems)


def _visible(session: Session, table: type[Dataset] | type[RegisteredModel], row_id: str | uuid.UUID, workspace_id: uuid.UUID) -> bool:
    return session.scalar(select(table.id).where(table.id == uuid.UUID(str(row_id)), table.workspace_id == workspace_id)) is not None


def _reset_from(steps: list[dict[str, Any]], index: int) -> None:
    for step in steps[index:]:
        step["status"], step["output"] = "pending", {}


def _refresh(session: Session, pipeline: Pipeline) -> None:
    """The fields that follow from the steps: what is done, where the user is, the
    latest dataset and model. The status is the caller's to set."""
    steps = pipeline.steps
    done = [step for step in steps if step["status"] in DONE]
    pipeline.completed_steps = [step["name"] for step in done]
    pipeline.current_step = next((step["name"] for step in steps if step["status"] not in DONE), STEP_NAMES[-1])
    pipeline.dataset_id = _latest_output(session, pipeline, done, "dataset_id", Dataset)
    pipeline.model_id = _latest_output(session, pipeline, done, "model_id", RegisteredModel)


def _latest_output(session: Session, pipeline: Pipeline, done: list[dict[str, Any]], key: str, table: type[Dataset] | type[RegisteredModel]) -> uuid.UUID | None:
    # A row deleted since the step made it is gone for the pipeline too.
    latest = next((step["output"][key] for step in reversed(done) if step["output"].get(key)), None)
    return uuid.UUID(latest) if latest and _visible(session, table, latest, pipeline.workspace_id) else None


def _resting_status(steps: list[dict[str, Any]]) -> PipelineStatus:
    if all(step["status"] in DONE for step in steps):
        return PipelineStatus.completed
    configs = {step["name"]: step["config"] for step in steps}
    return PipelineStatus.ready if configs["upload"] and configs["model"] else PipelineStatus.draft


# --- doing the steps -------------------------------------------------------------------


def advance(session: Session, store: ArtifactStore, pipeline: Pipeline, name: str, user_id: uuid.UUID) -> Pipeline:
    """Do one step now, once every step before it is done. Training is not run here (it
    is long): the step records the model once it is trained (by /run or by POST
    /api/v1/models/{id}/train)."""
    _not_running(pipeline)
    index = STEP_INDEX[name]
    if (status := pipeline.steps[index]["status"]) in DONE:
        raise StepAlreadyDone(f"Step '{name}' is already {status}", {"step": "change its configuration (PUT) to do it again"})
    missing = [step["name"] for step in pipeline.steps[:index] if step["status"] not in DONE]
    if missing:
        raise StepOutOfOrder(f"Complete {', '.join(repr(m) for m in missing)} before '{name}'", {"step": name, "missing": missing})
    work = StepWork(session, store, pipeline, user_id)
    status, output = _recorded_training(work) if name == "training" else execute_step(work, name)
    mark_step(session, pipeline, name, status, output)
    pipeline.status, pipeline.error = _resting_status(pipeline.steps), None
    session.flush()
    return pipeline


@dataclass
class StepWork:
    session: Session
    store: ArtifactStore
    pipeline: Pipeline
    user_id: uuid.UUID

    def config(self, name: str) -> dict[str, Any] | None:
        return self.pipeline.steps[STEP_INDEX[name]]["config"]

    def dataset(self) -> Dataset:
        """The dataset the done steps produced: the upload's, or its latest derivation."""
        if self.pipeline.dataset_id is None:
            raise InvalidPipeline("The dataset of the earlier steps no longer exists", {"steps.upload.config.dataset_id": "upload the data again and set it here"})
        return datasets.get_dataset(self.session, self.pipeline.dataset_id, self.pipeline.workspace_id)


StepResult = tuple[str, dict[str, str]]


def execute_step(work: StepWork, name: str) -> StepResult:
    """Do one step other than training: its status (completed, or skipped when an
    optional step has no configuration) and what it produced."""
    return _ACTIONS[name](work)


def _upload(work: StepWork) -> StepResult:
    config = work.config("upload")
    if config is None:
        raise InvalidPipeline("The upload step has no dataset", {"steps.upload.config.dataset_id": "upload with POST /api/v1/datasets/upload and set the dataset_id here"})
    dataset = datasets.get_dataset(work.session, uuid.UUID(config["dataset_id"]), work.pipeline.workspace_id)
    return "completed", {"dataset_id": str(dataset.id)}


def _preview(work: StepWork) -> StepResult:
    if not (changes := work.config("preview")):
        return "skipped", {}
    datasets.update_config(work.session, work.store, work.dataset(), changes)
    return "completed", {}


def _split(work: StepWork) -> StepResult:
    if (config := work.config("split")) is None:
        return "skipped", {}
    datasets.split(work.session, work.store, work.dataset(), SplitRequest.model_validate(config).model_dump())
    return "completed", {}


def _preprocessing(work: StepWork) -> StepResult:
    if (config := work.config("preprocessing")) is None:
        return "skipped", {}
    return _derived(work, PreprocessRequest.model_validate(config))


def _features(work: StepWork) -> StepResult:
    config = work.config("features")
    features = FeatureEngineering.model_validate(config) if config is not None else None
    if features is None or not features.enabled():
        return "skipped", {}
    source = work.dataset()
    return _derived(work, PreprocessRequest(name=f"{source.name} (features)"[:200], feature_engineering=features))


def _derived(work: StepWork, request: PreprocessRequest) -> StepResult:
    dataset, _ = datasets.create_preprocessed(work.session, work.store, work.dataset(), request, user_id=work.user_id)
    return "completed", {"dataset_id": str(dataset.id)}


def _model(work: StepWork) -> StepResult:
    if (config := work.config("model")) is None:
        raise InvalidPipeline("The model step has no configuration", {"steps.model.config": "the body of POST /api/v1/models/configure"})
    given = ModelStepConfig.model_validate(config)
    body = TrainRequest.model_validate({**given.model_dump(), "dataset_id": given.dataset_id or work.dataset().id})
    model = forecasting.configure(work.session, work.store, work.pipeline.workspace_id, work.user_id, body)
    return "completed", {"model_id": str(model.id)}


def _recorded_training(work: StepWork) -> StepResult:
    model = _pipeline_model(work.session, work.pipeline)
    if model.status != ModelStatus.trained:
        raise InvalidPipeline(
            f"Model '{model.id}' is not trained", {"model_id": f"it is {model.status.value}: train it with POST /api/v1/models/{model.id}/train, or run the pipeline"}
        )
    return "completed", {"model_id": str(model.id)}


_ACTIONS = {"upload": _upload, "preview": _preview, "split": _split, "preprocessing": _preprocessing, "features": _features, "model": _model}


def _pipeline_model(session: Session, pipeline: Pipeline) -> RegisteredModel:
    if pipeline.model_id is None:
        raise InvalidPipeline("The model of the model step no longer exists", {"steps.model": "change its configuration to configure a new one"})
    return registry.get_model(session, pipeline.model_id, pipeline.workspace_id, for_update=True)


def mark_step(session: Session, pipeline: Pipeline, name: str, status: str, output: dict[str, str] | None = None) -> None:
    steps = copy.deepcopy(pipeline.steps)
    steps[STEP_INDEX[name]].update(status=status, output=output or {})
    pipeline.steps = steps
    _refresh(session, pipeline)
    session.flush()


# --- running the whole chain -----------------------------------------------------------


def start_run(session: Session, pipeline: Pipeline, user_id: uuid.UUID) -> Job:
    """Every step again, from the upload, in one job. What can be checked without the
    data is checked now: the dataset, and the model step's algorithm and parameters."""
    _not_running(pipeline)
    _check_runnable(session, pipeline)
    job = jobs.enqueue(session, RUN_JOB, {"pipeline_id": str(pipeline.id), "user_id": str(user_id)}, workspace_id=pipeline.workspace_id, created_by=user_id)
    steps = copy.deepcopy(pipeline.steps)
    _reset_from(steps, 0)
    pipeline.steps, pipeline.status, pipeline.last_job_id, pipeline.error = steps, PipelineStatus.running, job.id, None
    _refresh(session, pipeline)
    session.flush()
    return job


def _check_runnable(session: Session, pipeline: Pipeline) -> None:
    configs = {step["name"]: step["config"] for step in pipeline.steps}
    problems = {}
    if configs["upload"] is None:
        problems["steps.upload.config.dataset_id"] = "upload with POST /api/v1/datasets/upload and set the dataset_id here"
    if configs["model"] is None:
        problems["steps.model.config"] = "the body of POST /api/v1/models/configure"
    if problems:
        raise InvalidPipeline("The pipeline cannot run yet", problems)
    _check_given(session, pipeline.workspace_id, pipeline.steps)


def _check_model_step(config: ModelStepConfig) -> None:
    """What configure refuses before it reads any data: the algorithm, its
    hyperparameters, the search."""
    where = "steps.model.config."
    try:
        algorithm = get_algorithm(config.algorithm)
    except UnknownAlgorithm as exc:
        raise InvalidPipeline(exc.message, {f"{where}algorithm": exc.details["algorithm"]}) from None
    if not algorithm.listed:
        raise InvalidPipeline(f"'{algorithm.id}' cannot be a pipeline's model", {f"{where}algorithm": "custom networks are configured through POST /api/v1/models/custom"})
    try:
        algorithm.resolve(config.hyperparameters)
        if config.optimization.enabled:
            forecasting.study_spec(algorithm, config.optimization, "optimization.")
    except UnprocessableEntity as exc:
        prefix = where if isinstance(exc, InvalidTrainingConfig) else f"{where}hyperparameters."
        raise InvalidPipeline(exc.message, {f"{prefix}{key}": value for key, value in exc.details.items()}) from None


def begin_training(session: Session, pipeline: Pipeline, job_id: uuid.UUID) -> uuid.UUID:
    """The model of the model step, marked as being trained by this run's job (as
    forecasting.start_training marks it for the job it enqueues)."""
    model = _pipeline_model(session, pipeline)
    if model.status == ModelStatus.training:
        raise AlreadyTraining(f"Model '{model.id}' is already training", {"job_id": str(model.training_job_id)})
    model.status, model.training_job_id = ModelStatus.training, job_id
    session.flush()
    return model.id


def fail_step(session: Session, pipeline: Pipeline, name: str, error: str, job_id: uuid.UUID) -> None:
    steps = copy.deepcopy(pipeline.steps)
    steps[STEP_INDEX[name]]["status"] = "failed"
    pipeline.steps, pipeline.status, pipeline.error = steps, PipelineStatus.failed, f"{name}: {error}"
    _refresh(session, pipeline)
    _release_model(session, pipeline, job_id, JobStatus.failed)


def finish_run(session: Session, pipeline: Pipeline) -> None:
    pipeline.status = _resting_status(pipeline.steps)
    session.flush()


def describe(exc: Exception) -> str:
    if isinstance(exc, VurError):
        details = "; ".join(f"{key}: {value}" for key, value in exc.details.items())
        return f"{exc.message} ({details})" if details else exc.message
    return f"{type(exc).__name__}: {exc}"


def run_ended_unfinished(session: Session, job: Job) -> None:
    """The run's job ended failed or cancelled without the job saying how (its worker
    died, or a cancel stopped it): the running step fails, or goes back to pending."""
    pipeline = session.get(Pipeline, uuid.UUID(job.payload["pipeline_id"]))
    if pipeline is None or pipeline.last_job_id != job.id or pipeline.status != PipelineStatus.running:
        return
    name = next((step["name"] for step in pipeline.steps if step["status"] == "running"), pipeline.current_step)
    if job.status == JobStatus.cancelled:
        mark_step(session, pipeline, name, "pending")
        pipeline.status, pipeline.error = _resting_status(pipeline.steps), f"{name}: {job.error}"
        _release_model(session, pipeline, job.id, JobStatus.cancelled)
    else:
        fail_step(session, pipeline, name, job.error or "the job failed", job.id)


def _release_model(session: Session, pipeline: Pipeline, job_id: uuid.UUID, outcome: JobStatus) -> None:
    model = session.get(RegisteredModel, pipeline.model_id) if pipeline.model_id else None
    if model is not None and model.status == ModelStatus.training and model.training_job_id == job_id:
        model.status = registry.status_after_training(model, None, outcome)
    session.flush()


# --- export and import -----------------------------------------------------------------


def export_document(pipeline: Pipeline, secret: str) -> PipelineDocument:
    content = PipelineContent.model_validate({"name": pipeline.name, "description": pipeline.description, "steps": pipeline.steps})
    document = PipelineDocument(format=FORMAT, version=VERSION, exported_at=utcnow(), installation=installation_of(secret), pipeline=content, signature="0" * 64)
    document.signature = sign(_canonical(document), secret)
    return document


def installation_of(secret: str) -> str:
    """This installation's name in the documents it exports: derived from its secret key
    (one-way), so that it stays the same across restarts and reveals nothing of the key."""
    return sign(b"vur installation", secret)[:16]


def import_document(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID, document: PipelineDocument, secret: str) -> Pipeline:
    """A new pipeline from a document. One this installation exported must carry its
    signature, and keeps what was done (references to datasets and models the workspace
    cannot see are dropped, and every step from the first that used one goes back to
    pending). Another installation's cannot be checked here: only its configuration is
    taken, every step pending, as if created through the API."""
    content = document.pipeline
    steps = [{"name": s.name, "config": _stored(s.config), "status": s.status, "output": s.output.model_dump(mode="json", exclude_none=True)} for s in content.steps]
    if document.installation in (None, installation_of(secret)):
        if not signature_matches(_canonical(document), document.signature, secret):
            raise InvalidDocument("The document's signature does not match", {"signature": "the document was changed after its export"})
    else:
        steps = [{**step, "status": "pending", "output": {}} for step in steps]
    _drop_hidden_references(session, workspace_id, steps)
    return _add(session, workspace_id, user_id, content.name, content.description, steps)


def _canonical(document: PipelineDocument) -> bytes:
    """The signed bytes: every field but the signature, as this version's schema reads
    them (without `installation` in a document exported before it was written)."""
    left_out = {"signature"} | ({"installation"} if document.installation is None else set())
    return json.dumps(document.model_dump(mode="json", exclude=left_out), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _drop_hidden_references(session: Session, workspace_id: uuid.UUID, steps: list[dict[str, Any]]) -> None:
    first_reset = None
    for index, step in enumerate(steps):
        config, output = step["config"] or {}, step["output"]
        hidden = bool(config.get("dataset_id")) and not _visible(session, Dataset, config["dataset_id"], workspace_id)
        if hidden:
            # The upload step is nothing without its dataset; the model step falls back to the chain's.
            step["config"] = None if step["name"] == "upload" else {**config, "dataset_id": None}
        hidden = hidden or any(output.get(key) and not _visible(session, table, output[key], workspace_id) for key, table in (("dataset_id", Dataset), ("model_id", RegisteredModel)))
        if first_reset is None and (hidden or step["status"] not in DONE):
            first_reset = index
    if first_reset is not None:
        _reset_from(steps, first_reset)
