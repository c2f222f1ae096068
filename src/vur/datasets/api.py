from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from vur.core.deps import AppSettings, DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.datasets import service
from vur.datasets.exceptions import UnreadableFile
from vur.datasets.schemas import (
    DatasetConfig,
    DatasetRead,
    PreprocessRequest,
    PreprocessResponse,
    PreviewResponse,
    SplitRequest,
    SplitResponse,
    UploadResponse,
    UsageResponse,
    ValidateRequest,
    ValidationReport,
)
from vur.forge import instruction
from vur.forge.schemas import InstructionDatasetRead
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
        warnings=dataset.ingest_warnings,
    )


@router.get(
    "",
    response_model=list[DatasetRead | InstructionDatasetRead],
    summary="Datasets of the workspace, newest first: tabular ones, and the forge's instruction datasets in seed 004's shape",
)
def list_datasets(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    kind: Literal["tabular", "instruction"] | None = None,
    search: Annotated[str | None, Query(max_length=200, description="Part of the name or file name")] = None,
    domain_id: Annotated[uuid.UUID | None, Query(description="Only the instruction datasets of this forge domain")] = None,
) -> list[DatasetRead | InstructionDatasetRead]:
    only = instruction.in_domain(domain_id) if domain_id is not None else None
    rows, total = service.list_datasets(session, principal.workspace_id, kind=kind, search=search, only=only, limit=page.limit, offset=page.offset)
    set_total(response, total)
    parts = instruction.forge_parts(session, rows)
    return [instruction.read(row, parts[row.id]) if row.id in parts else DatasetRead.model_validate(row) for row in rows]


@router.get("/usage", response_model=UsageResponse, summary="Space used, counts by kind, recent uploads and updates")
def usage(principal: WorkspaceReader, session: DbSession) -> UsageResponse:
    return UsageResponse.model_validate(service.usage(session, principal.workspace_id), from_attributes=True)


@router.get("/{dataset_id}", response_model=DatasetRead | InstructionDatasetRead, summary="One dataset: a tabular one's metadata, or an instruction dataset with its counters")
def get_dataset(dataset_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> DatasetRead | InstructionDatasetRead:
    dataset = service.get_dataset(session, dataset_id, principal.workspace_id)
    parts = instruction.forge_parts(session, [dataset])
    return instruction.read(dataset, parts[dataset.id]) if dataset.id in parts else DatasetRead.model_validate(dataset)


@router.get("/{dataset_id}/preview", response_model=PreviewResponse, summary="A page of rows, optionally sorted and filtered")
def preview(
    dataset_id: uuid.UUID,
    principal: WorkspaceReader,
    session: DbSession,
    store: Store,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    columns: Annotated[str | None, Query(max_length=10_000, description="Comma-separated column names")] = None,
    sort: Annotated[str | None, Query(max_length=255)] = None,
    order: Literal["asc", "desc"] = "asc",
    filter: Annotated[list[str], Query(max_length=20, description="column:op:value, op in eq ne gt ge lt le contains")] = [],  # noqa: B006
) -> dict[str, Any]:
    dataset = service.get_dataset(session, dataset_id, principal.workspace_id)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    return service.preview(store, dataset, page=page, limit=limit, columns=wanted, sort=sort, descending=order == "desc", filters=filter)


@router.get("/{dataset_id}/statistics", summary="Per-column statistics, correlations and a time-series summary")
def statistics(dataset_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> dict[str, Any]:
    return service.statistics(store, service.get_dataset(session, dataset_id, principal.workspace_id))


_MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("/{dataset_id}/download", summary="The original file, or the data as CSV or Parquet", response_class=StreamingResponse)
def download(
    dataset_id: uuid.UUID,
    principal: WorkspaceReader,
    session: DbSession,
    store: Store,
    format: Literal["original", "csv", "parquet"] = "original",
) -> StreamingResponse:
    dataset = service.get_dataset(session, dataset_id, principal.workspace_id)
    stem = (dataset.filename or dataset.name).rsplit(".", 1)[0] or "dataset"
    if format == "original":
        key, extension = dataset.original_key, dataset.file_format or "csv"
    elif format == "parquet":
        key, extension = dataset.parquet_key, "parquet"
    else:
        key, extension = service.export_csv(store, dataset), "csv"
    if key is None:
        raise UnreadableFile("This dataset has no file to download", {"format": format})
    filename = f"{stem}.{extension}".encode("ascii", "replace").decode().replace('"', "'")
    return StreamingResponse(
        store.iter_chunks(key),
        media_type=_MEDIA.get(extension, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Content-Length": str(store.size(key))},
    )


@router.put("/{dataset_id}/config", response_model=DatasetRead, summary="Set the date, target, series id and feature columns")
def update_config(dataset_id: uuid.UUID, body: DatasetConfig, principal: WorkspaceWriter, session: DbSession, store: Store) -> DatasetRead:
    dataset = service.get_dataset(session, dataset_id, principal.workspace_id)
    return DatasetRead.model_validate(service.update_config(session, store, dataset, body.model_dump(exclude_unset=True)))


@router.post("/{dataset_id}/validate", response_model=ValidationReport, summary="Check the dataset is fit for forecasting")
def validate(dataset_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store, body: ValidateRequest | None = None) -> dict[str, Any]:
    dataset = service.get_dataset(session, dataset_id, principal.workspace_id)
    request = body or ValidateRequest()
    return service.validate(store, dataset, request.horizon, request.season_length)


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset and its files (409 while a model uses it, unless force)")
def delete(dataset_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession, store: Store, force: bool = False) -> None:
    service.delete_dataset(session, store, service.get_dataset(session, dataset_id, principal.workspace_id), force=force)


@router.post("/{dataset_id}/split", response_model=SplitResponse, summary="Split into train, validation and test (by time per series, or at random)")
def split(dataset_id: uuid.UUID, body: SplitRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> dict[str, Any]:
    dataset = service.get_dataset(session, dataset_id, principal.workspace_id)
    return service.split(session, store, dataset, body.model_dump())


@router.post(
    "/{dataset_id}/preprocess",
    response_model=PreprocessResponse,
    status_code=201,
    summary="Preprocess into a new dataset that records its source and the fitted steps",
)
def preprocess(dataset_id: uuid.UUID, body: PreprocessRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> PreprocessResponse:
    parent = service.get_dataset(session, dataset_id, principal.workspace_id)
    dataset, summary = service.create_preprocessed(session, store, parent, body, user_id=principal.user_id)
    return PreprocessResponse(**DatasetRead.model_validate(dataset).model_dump(), summary=summary)
