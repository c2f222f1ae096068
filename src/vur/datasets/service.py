"""Tabular datasets: ingest an upload once into typed Parquet, then read only that."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import PurePath
from typing import BinaryIO

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.db import on_rollback
from vur.core.repository import get_scoped, paginate
from vur.core.storage import CHUNK_BYTES, ArtifactStore, new_key
from vur.datasets import ingest
from vur.datasets.exceptions import DatasetNotFound, UnreadableFile
from vur.datasets.models import Dataset

_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "xlsx": ".xlsx"}


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def safe_display_name(filename: str | None) -> str:
    """The uploaded file's base name, for display only (never used as a path)."""
    base = PurePath((filename or "upload").replace("\\", "/")).name
    return "".join(ch for ch in base if ch.isprintable())[:255] or "upload"


def create_from_upload(
    session: Session,
    store: ArtifactStore,
    *,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    handle: BinaryIO,
    filename: str | None,
    name: str | None,
    description: str | None,
    max_bytes: int,
) -> Dataset:
    head = handle.read(ingest.SAMPLE_BYTES)
    if not head:
        raise UnreadableFile("The file is empty", {"file": "0 bytes"})
    file_format = ingest.sniff_format(head)
    original_key = new_key("datasets", workspace_id.hex, suffix=_SUFFIX[file_format])
    parquet_key = new_key("datasets", workspace_id.hex, suffix=".parquet")
    written: list[str] = []

    def discard() -> None:
        for key in written:
            store.delete(key)

    on_rollback(session, discard)
    try:
        stored = store.write_stream(original_key, _prepend(head, _chunks(handle)), max_bytes=max_bytes)
        written.append(original_key)
        frame = ingest.read_table(store.local_path(original_key), file_format)
        if frame.width == 0 or frame.height == 0:
            raise UnreadableFile("The file has no data rows", {"rows": 0})
        types = ingest.detect_types(frame)
        frame = ingest.to_storage_types(frame, types)
        suggestions = ingest.suggest_roles(frame, types)
        frequency = ingest.infer_frequency(frame[suggestions["date_column"]]) if suggestions["date_column"] else None
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        store.write_bytes(parquet_key, buffer.getvalue())
        written.append(parquet_key)
    except BaseException:
        discard()
        raise

    display = safe_display_name(filename)
    dataset = Dataset(
        workspace_id=workspace_id,
        created_by=user_id,
        kind="tabular",
        name=name or display.rsplit(".", 1)[0] or display,
        description=description,
        filename=display,
        file_format=file_format,
        size_bytes=stored.size,
        sha256=stored.sha256,
        rows_count=frame.height,
        columns=frame.columns,
        detected_types=types,
        suggestions=suggestions,
        frequency=frequency,
        config={k: suggestions[k] for k in ("date_column", "target_column", "series_id_column")},
        original_key=original_key,
        parquet_key=parquet_key,
    )
    session.add(dataset)
    session.flush()
    return dataset


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def get_dataset(session: Session, dataset_id: uuid.UUID, workspace_id: uuid.UUID) -> Dataset:
    return get_scoped(session, Dataset, dataset_id, workspace_id, DatasetNotFound)


def list_datasets(session: Session, workspace_id: uuid.UUID, *, kind: str | None, limit: int, offset: int) -> tuple[list[Dataset], int]:
    stmt = select(Dataset).where(Dataset.workspace_id == workspace_id)
    if kind is not None:
        stmt = stmt.where(Dataset.kind == kind)
    return paginate(session, stmt.order_by(Dataset.created_at.desc()), limit=limit, offset=offset)


def load_frame(store: ArtifactStore, dataset: Dataset, columns: list[str] | None = None) -> pl.DataFrame:
    if dataset.parquet_key is None:
        raise UnreadableFile("This dataset has no tabular data", {"kind": dataset.kind})
    with store.open(dataset.parquet_key) as handle:
        return pl.read_parquet(handle, columns=columns)
