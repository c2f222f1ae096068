from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from vur.core.deps import AppSettings, DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.pipelines import service
from vur.pipelines.models import PipelineStatus
from vur.pipelines.schemas import PipelineCreate, PipelineDocument, PipelineRead, PipelineUpdate, RunAccepted, StepName

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"])


@router.post("", response_model=PipelineRead, status_code=201, summary="Create a pipeline: the seven steps, with the configurations given")
def create_pipeline(body: PipelineCreate, principal: WorkspaceWriter, session: DbSession) -> PipelineRead:
    return PipelineRead.model_validate(service.create_pipeline(session, principal.workspace_id, principal.user_id, body))


@router.get("", response_model=list[PipelineRead], summary="Pipelines of the workspace, newest first")
def list_pipelines(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, status: PipelineStatus | None = None) -> list[PipelineRead]:
    rows, total = service.list_pipelines(session, principal.workspace_id, status=status, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [PipelineRead.model_validate(row) for row in rows]


@router.post(
    "/import",
    response_model=PipelineRead,
    status_code=201,
    summary="Import a document from GET /export as a new pipeline. A document this installation exported must carry its signature (422 otherwise) and keeps its steps' state; another installation's brings its configuration, every step pending",
)
def import_pipeline(body: PipelineDocument, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> PipelineRead:
    pipeline = service.import_document(session, principal.workspace_id, principal.user_id, body, settings.resolved_secret_key())
    return PipelineRead.model_validate(pipeline)


@router.get("/{pipeline_id}", response_model=PipelineRead, summary="One pipeline: its steps, their state, its dataset and model")
def get_pipeline(pipeline_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> PipelineRead:
    return PipelineRead.model_validate(service.get_pipeline(session, pipeline_id, principal.workspace_id))


@router.put("/{pipeline_id}", response_model=PipelineRead, summary="Change the name, description or step configurations (a changed step and every later one go back to pending)")
def update_pipeline(pipeline_id: uuid.UUID, body: PipelineUpdate, principal: WorkspaceWriter, session: DbSession) -> PipelineRead:
    pipeline = service.get_pipeline(session, pipeline_id, principal.workspace_id, for_update=True)
    return PipelineRead.model_validate(service.update_pipeline(session, pipeline, body))


@router.delete("/{pipeline_id}", status_code=204, summary="Delete a pipeline (409 while it runs); its datasets and models stay")
def delete_pipeline(pipeline_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> None:
    service.delete_pipeline(session, service.get_pipeline(session, pipeline_id, principal.workspace_id, for_update=True))


@router.post(
    "/{pipeline_id}/steps/{step}/complete",
    response_model=PipelineRead,
    summary="Do one step now, once every earlier step is done (422 naming what is missing); training records the trained model",
)
def complete_step(pipeline_id: uuid.UUID, step: StepName, principal: WorkspaceWriter, session: DbSession, store: Store) -> PipelineRead:
    pipeline = service.get_pipeline(session, pipeline_id, principal.workspace_id, for_update=True)
    return PipelineRead.model_validate(service.advance(session, store, pipeline, step, principal.user_id))


@router.get("/{pipeline_id}/export", response_model=PipelineDocument, summary="The pipeline as a versioned document, signed by this instance")
def export_pipeline(pipeline_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, settings: AppSettings, response: Response) -> PipelineDocument:
    pipeline = service.get_pipeline(session, pipeline_id, principal.workspace_id)
    response.headers["Content-Disposition"] = f'attachment; filename="pipeline-{pipeline.id.hex[:8]}.json"'
    return service.export_document(pipeline, settings.resolved_secret_key())


@router.post("/{pipeline_id}/run", response_model=RunAccepted, status_code=202, summary="Run every step, from the upload to training, as one job")
def run_pipeline(pipeline_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> RunAccepted:
    pipeline = service.get_pipeline(session, pipeline_id, principal.workspace_id, for_update=True)
    job = service.start_run(session, pipeline, principal.user_id)
    return RunAccepted(pipeline_id=pipeline.id, job_id=job.id, status=job.status.value)
