from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class Dataset(RecordMixin, Base):
    """A dataset of the workspace. `kind` tells tabular data (uploaded files, parsed
    once into Parquet) from the forge's instruction datasets. A preprocessed dataset
    names its source in `parent_id` and keeps the applied steps, with their fitted
    parameters, in `steps`; an uploaded one has neither."""

    __tablename__ = "datasets"
    __resource__ = "Dataset"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20), default="tabular", index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    file_format: Mapped[str | None] = mapped_column(String(20), default=None)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Everything kept for this dataset: the original, its Parquet copy, cached profiles.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    rows_count: Mapped[int] = mapped_column(BigInteger, default=0)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    detected_types: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    suggestions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    frequency: Mapped[str | None] = mapped_column(String(20), default=None)
    # What the parse could not read and stored as missing (see ingest._unread_timestamps).
    ingest_warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    original_key: Mapped[str | None] = mapped_column(String(300), default=None)
    parquet_key: Mapped[str | None] = mapped_column(String(300), default=None)
    # SET NULL: deleting the source leaves its derived datasets (and their steps) intact.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True, default=None)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
