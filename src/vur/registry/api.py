from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile

from vur.core.db import MAX_DB_INT
from vur.core.deps import AppSettings, DbSession, Store
from vur.core.errors import PayloadTooLarge
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.registry import service
from vur.registry.schemas import LlmModelRead, ModelRead, SaveRequest, VersionRead

router = APIRouter(prefix="/api/v1/models", tags=["models"])
# Bundles are files: this router gets the upload size limit.
upload_router = APIRouter(prefix="/api/v1/models", tags=["models"])


# LLMs (kind "llm") answer in seed 004's shape, every other kind as ModelRead.
AnyModel = ModelRead | LlmModelRead


@router.get("", response_model=list[AnyModel], summary="Models of the workspace, newest first (provider and domain_id select LLMs)")
def list_models(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    kind: str | None = None,
    provider: Annotated[str | None, Query(max_length=50)] = None,
    domain_id: uuid.UUID | None = None,
) -> list[AnyModel]:
    rows, total = service.list_models(session, principal.workspace_id, kind=kind, provider=provider, domain_id=domain_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return service.read_models(session, rows)


@router.get("/{model_id}", response_model=AnyModel, summary="One model: configuration, status and metrics")
def get_model(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> AnyModel:
    return service.read_model(session, service.get_model(session, model_id, principal.workspace_id))


@router.delete("/{model_id}", status_code=204, summary="Delete a model and its artifacts (409 while it trains)")
def delete_model(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession, store: Store) -> None:
    service.delete_model(session, store, service.get_model(session, model_id, principal.workspace_id, for_update=True))


@router.post("/{model_id}/deploy", response_model=AnyModel, summary="Mark a trained model as deployed: the one to serve (409 unless trained)")
def deploy(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> AnyModel:
    return service.read_model(session, service.deploy(session, service.get_model(session, model_id, principal.workspace_id, for_update=True)))


@router.post("/{model_id}/archive", response_model=AnyModel, summary="Archive a model: kept, but not trained or predicted with until restored")
def archive(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> AnyModel:
    return service.read_model(session, service.archive(session, service.get_model(session, model_id, principal.workspace_id, for_update=True)))


@router.post("/{model_id}/restore", response_model=AnyModel, summary="Bring an archived model back (trained when it has a version, else configured or registered)")
def restore(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> AnyModel:
    return service.read_model(session, service.restore(session, service.get_model(session, model_id, principal.workspace_id, for_update=True)))


@router.get("/{model_id}/versions", response_model=list[VersionRead], summary="The model's versions, one per successful training, newest first")
def list_versions(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> list[VersionRead]:
    model = service.get_model(session, model_id, principal.workspace_id)
    return [VersionRead.model_validate(v) for v in service.list_versions(session, model)]


@router.post("/{model_id}/save", response_model=VersionRead, summary="Keep a version (the latest unless `version` says) with an optional note")
def save_version(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession, body: Annotated[SaveRequest | None, Body()] = None) -> VersionRead:
    body = body or SaveRequest()  # no body: the latest version, without a note
    model = service.get_model(session, model_id, principal.workspace_id, for_update=True)
    return VersionRead.model_validate(service.save_version(session, model, body.version, body.note))


@router.get(
    "/{model_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "A signed bundle that POST /api/v1/models/load accepts"}},
    summary="Export a version as a signed bundle (zip)",
)
def export_version(
    model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store, settings: AppSettings, version: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None
) -> Response:
    model = service.get_model(session, model_id, principal.workspace_id)
    chosen = service.get_version(session, model, version)
    bundle = service.export_version(store, model, chosen, settings.resolved_secret_key())
    filename = f"model-{model.id.hex[:8]}-v{chosen.number}.vurmodel.zip"
    return Response(bundle, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@upload_router.post("/load", response_model=ModelRead, status_code=201, summary="Load a bundle exported by this VUR instance as a new trained model")
def load_bundle(
    principal: WorkspaceWriter,
    session: DbSession,
    store: Store,
    settings: AppSettings,
    file: Annotated[UploadFile, File(description="A bundle from GET /api/v1/models/{id}/export")],
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> ModelRead:
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"File exceeds the limit of {settings.max_upload_bytes} bytes", {"max_bytes": settings.max_upload_bytes})
    model = service.import_bundle(session, store, principal.workspace_id, principal.user_id, data, settings.resolved_secret_key(), name)
    return ModelRead.model_validate(model)
