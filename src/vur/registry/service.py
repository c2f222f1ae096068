from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.repository import get_scoped, paginate
from vur.registry.exceptions import ModelNotFound
from vur.registry.models import RegisteredModel


def get_model(session: Session, model_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> RegisteredModel:
    return get_scoped(session, RegisteredModel, model_id, workspace_id, ModelNotFound, for_update=for_update)


def list_models(session: Session, workspace_id: uuid.UUID, *, kind: str | None, limit: int, offset: int) -> tuple[list[RegisteredModel], int]:
    stmt = select(RegisteredModel).where(RegisteredModel.workspace_id == workspace_id)
    if kind is not None:
        stmt = stmt.where(RegisteredModel.kind == kind)
    return paginate(session, stmt.order_by(RegisteredModel.created_at.desc()), limit=limit, offset=offset)
