"""Workspace-scoped reads shared by every domain: a row of another workspace is a 404."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from vur.core.errors import NotFound

T = TypeVar("T")


def get_scoped(session: Session, model: type[T], id_: uuid.UUID, workspace_id: uuid.UUID, not_found: type[NotFound] = NotFound, *, for_update: bool = False) -> T:
    stmt = select(model).where(model.id == id_, model.workspace_id == workspace_id)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None:
        raise not_found.for_id(getattr(model, "__resource__", model.__name__), id_)
    return row


def paginate(session: Session, stmt: Select[Any], *, limit: int, offset: int) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(session.scalars(stmt.limit(limit).offset(offset)).all())
    return rows, total


def contains(column: Any, text: str) -> Any:
    """Case-insensitive substring match, with the LIKE wildcards in `text` taken literally."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return column.ilike(pattern, escape="\\")
