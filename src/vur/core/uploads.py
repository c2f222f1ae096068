"""What every upload endpoint does with the file it receives: stream it to the store
behind the bytes already read to recognise it, delete what was written if anything is
refused, and keep the client's file name for display only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import BinaryIO

from sqlalchemy.orm import Session

from vur.core.db import on_rollback
from vur.core.storage import CHUNK_BYTES, ArtifactStore


def safe_display_name(filename: str | None) -> str:
    """The uploaded file's base name, for display only (never used as a path)."""
    base = PurePath((filename or "upload").replace("\\", "/")).name
    return "".join(ch for ch in base if ch.isprintable())[:255] or "upload"


def chunks_after(head: bytes, handle: BinaryIO) -> Iterator[bytes]:
    """The first bytes (already read, to recognise the format), then the rest of the file."""
    yield head
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


@contextmanager
def discarded_on_failure(session: Session, store: ArtifactStore, folder: str) -> Iterator[None]:
    """The files written into `folder` go away if writing them fails here, or if the
    transaction that records them rolls back later."""

    def discard() -> None:
        store.delete_prefix(folder)

    on_rollback(session, discard)
    try:
        yield
    except BaseException:
        discard()
        raise
