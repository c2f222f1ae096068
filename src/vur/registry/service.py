from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.db import on_commit
from vur.core.repository import get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.registry.exceptions import ModelBusy, ModelNotFound
from vur.registry.models import ModelStatus, RegisteredModel


def get_model(session: Session, model_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> RegisteredModel:
    return get_scoped(session, RegisteredModel, model_id, workspace_id, ModelNotFound, for_update=for_update)


def list_models(session: Session, workspace_id: uuid.UUID, *, kind: str | None, limit: int, offset: int) -> tuple[list[RegisteredModel], int]:
    stmt = select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id)
    if kind is not None:
        stmt = stmt.where(RegisteredModel.kind == kind)
    return paginate(session, stmt.order_by(RegisteredModel.created_at.desc()), limit=limit, offset=offset)


def model_folder(workspace_id: uuid.UUID, model_id: uuid.UUID) -> str:
    """Where a model's artifacts live; deleted with the model."""
    return f"models/{workspace_id.hex}/{model_id.hex}"


def delete_model(session: Session, store: ArtifactStore, model: RegisteredModel) -> None:
    """The row and its artifacts (removed once the deletion has committed)."""
    if model.status == ModelStatus.training:
        raise ModelBusy(f"Model '{model.id}' is training; cancel its job first", {"job_id": str(model.training_job_id)})
    folder = model_folder(model.workspace_id, model.id)
    session.delete(model)
    session.flush()
    on_commit(session, lambda: store.delete_prefix(folder))
