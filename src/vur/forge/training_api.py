"""Routes of the forge's second half that lead to training: exports of instruction datasets
and their signed downloads, LLM registration, and training jobs (seed 004)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from vur.core.db import utcnow
from vur.core.deps import AppSettings, DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.datasets import service as datasets
from vur.forge import exports, finetuning
from vur.forge import service as forge
from vur.forge.exceptions import BadDownloadSignature
from vur.forge.models import DatasetExport
from vur.forge.training_schemas import DownloadUrl, ExportRead, ExportRequest, TrainingJobCreate, TrainingJobRead, TrainingStatus
from vur.identity.auth import WorkspaceReader, WorkspaceWriter, oauth2_scheme, principal_from_token
from vur.registry import service as registry
from vur.registry.schemas import LlmModelCreate, LlmModelRead
from vur.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["forge"])

FILE_ROUTE = "download_export_file"


def _signed(request: Request, export: DatasetExport, settings: Settings) -> DownloadUrl:
    file_url = str(request.url_for(FILE_ROUTE, export_id=str(export.id)))
    url, expires_at = exports.download_url(file_url, export, settings.resolved_secret_key(), settings.forge_export_url_seconds, utcnow())
    return DownloadUrl(download_url=url, expires_at=expires_at)


# --- exports ------------------------------------------------------------------------------


@router.post(
    "/datasets/{dataset_id}/export",
    response_model=ExportRead,
    summary="Export an instruction dataset's items for fine-tuning (chat or preference layout; 422 when nothing is selected, 409 for a tabular dataset)",
)
def create_export(dataset_id: uuid.UUID, body: ExportRequest, principal: WorkspaceWriter, session: DbSession, store: Store, settings: AppSettings, request: Request) -> ExportRead:
    dataset = exports.instruction_dataset(session, dataset_id, principal.workspace_id)
    export = exports.create_export(session, store, dataset, principal.user_id, body)
    return ExportRead.model_validate(export).model_copy(update={"download_url": _signed(request, export, settings).download_url})


@router.get("/datasets/{dataset_id}/exports", response_model=list[ExportRead], summary="The dataset's exports, newest first (none for a tabular dataset)")
def list_exports(dataset_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams) -> list[ExportRead]:
    dataset = datasets.get_dataset(session, dataset_id, principal.workspace_id)
    rows, total = exports.list_exports(session, dataset, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [ExportRead.model_validate(row) for row in rows]


@router.get("/datasets/exports/{export_id}/download", response_model=DownloadUrl, summary="A fresh signed URL for an export's file, valid for forge_export_url_seconds")
def export_download_url(export_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, settings: AppSettings, request: Request) -> DownloadUrl:
    return _signed(request, exports.get_export(session, export_id, principal.workspace_id), settings)


@router.get(
    "/datasets/exports/{export_id}/file",
    name=FILE_ROUTE,
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}, "application/json": {}, "text/csv": {}}, "description": "The export's file"}},
    summary="An export's file: with the signature of a download URL (no token; 403 when wrong, 410 when expired), or with a token of its workspace",
)
def export_file(
    export_id: uuid.UUID,
    session: DbSession,
    store: Store,
    settings: AppSettings,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    expires: Annotated[int | None, Query(description="From the download URL")] = None,
    signature: Annotated[str | None, Query(max_length=128, description="From the download URL")] = None,
) -> StreamingResponse:
    if expires is not None or signature is not None:
        if expires is None or signature is None:
            raise BadDownloadSignature("This download link is not valid", {"signature": "expires and signature come together"})
        exports.check_download(export_id, expires, signature, settings.resolved_secret_key(), utcnow())
        export = exports.export_file(session, export_id)
    else:
        export = exports.get_export(session, export_id, principal_from_token(session, settings, token).workspace_id)
    filename = f"dataset-{export.dataset_id.hex[:8]}-v{export.export_version}.{export.format}"
    return StreamingResponse(store.iter_chunks(export.s3_key), media_type=exports.MEDIA_TYPES[export.format], headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- LLM registration -------------------------------------------------------------------


@router.post("/models", response_model=LlmModelRead, status_code=201, tags=["models"], summary="Register an LLM (kind llm) to fine-tune or serve; status registered")
def register_model(body: LlmModelCreate, principal: WorkspaceWriter, session: DbSession) -> LlmModelRead:
    if body.domain_id is not None:
        forge.get_domain(session, body.domain_id, principal.workspace_id)
    return registry.read_model(session, registry.register_llm(session, principal.workspace_id, principal.user_id, body))


# --- training jobs ------------------------------------------------------------------------


@router.post("/training-jobs", response_model=TrainingJobRead, status_code=201, summary="Fine-tune a registered LLM at OpenAI or Together on a JSONL export of a dataset")
def create_training_job(body: TrainingJobCreate, principal: WorkspaceWriter, session: DbSession) -> TrainingJobRead:
    return finetuning.read_jobs(session, [finetuning.create_job(session, principal.workspace_id, principal.user_id, body)])[0]


@router.get("/training-jobs", response_model=list[TrainingJobRead], summary="Training runs of every kind (fine-tuning, forecasting, ranking), newest first")
def list_training_jobs(
    principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, model_id: uuid.UUID | None = None, status: TrainingStatus | None = None
) -> list[TrainingJobRead]:
    rows, total = finetuning.list_jobs(session, principal.workspace_id, model_id=model_id, status=status, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return rows


@router.get("/training-jobs/{job_id}", response_model=TrainingJobRead, summary="One training run: status, metrics, error")
def get_training_job(job_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> TrainingJobRead:
    return finetuning.get_job(session, job_id, principal.workspace_id)


@router.post("/training-jobs/{job_id}/cancel", response_model=TrainingJobRead, summary="Cancel a training run (at the provider for a fine-tuning job; 409 once it ended)")
def cancel_training_job(job_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> TrainingJobRead:
    return finetuning.cancel(session, job_id, principal.workspace_id)
