from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from vur.core.deps import DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.registry import service
from vur.registry.schemas import ModelRead

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", response_model=list[ModelRead], summary="Models of the workspace, newest first")
def list_models(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, kind: str | None = None) -> list[ModelRead]:
    rows, total = service.list_models(session, principal.workspace_id, kind=kind, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [ModelRead.model_validate(row) for row in rows]


@router.get("/{model_id}", response_model=ModelRead, summary="One model: configuration, status and metrics")
def get_model(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> ModelRead:
    return ModelRead.model_validate(service.get_model(session, model_id, principal.workspace_id))


@router.delete("/{model_id}", status_code=204, summary="Delete a model and its artifacts (409 while it trains)")
def delete_model(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession, store: Store) -> None:
    service.delete_model(session, store, service.get_model(session, model_id, principal.workspace_id, for_update=True))
