from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from vur.core.deps import AppSettings, DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.datasets import service
from vur.datasets.schemas import DatasetRead, UploadResponse
from vur.identity.auth import WorkspaceReader, WorkspaceWriter

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
# Mounted with the upload size limit instead of the JSON body limit.
upload_router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@upload_router.post("/upload", response_model=UploadResponse, status_code=201, summary="Upload a CSV/TSV or Parquet file")
def upload_dataset(
    principal: WorkspaceWriter,
    session: DbSession,
    store: Store,
    settings: AppSettings,
    file: Annotated[UploadFile, File(description="CSV, TSV or Parquet; the format is recognised from the bytes")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    description: Annotated[str | None, Form(max_length=5000)] = None,
) -> UploadResponse:
    dataset = service.create_from_upload(
        session,
        store,
        workspace_id=principal.workspace_id,
        user_id=principal.user_id,
        handle=file.file,
        filename=file.filename,
        name=name,
        description=description,
        max_bytes=settings.max_upload_bytes,
    )
    return UploadResponse(
        dataset_id=dataset.id,
        filename=dataset.filename or "",
        size=dataset.size_bytes,
        columns=dataset.columns,
        rows_count=dataset.rows_count,
        detected_types=dataset.detected_types,
        suggestions=dataset.suggestions,
        frequency=dataset.frequency,
        kind=dataset.kind,
    )


@router.get("", response_model=list[DatasetRead], summary="Datasets of the workspace, newest first")
def list_datasets(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, kind: str | None = None) -> list[DatasetRead]:
    rows, total = service.list_datasets(session, principal.workspace_id, kind=kind, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [DatasetRead.model_validate(row) for row in rows]


@router.get("/{dataset_id}", response_model=DatasetRead, summary="One dataset's metadata")
def get_dataset(dataset_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> DatasetRead:
    return DatasetRead.model_validate(service.get_dataset(session, dataset_id, principal.workspace_id))
