"""The artifact store: uploads, parsed datasets and model artifacts.

Keys are chosen by VUR, never by a user: a namespace of known words plus a uuid.
A user-supplied file name is kept only as metadata. Writes stream in chunks, are
limited in size, and land atomically (temporary file, then rename), so a failed or
oversized write leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from vur.core.errors import PayloadTooLarge

CHUNK_BYTES = 1 << 20
# Matched with fullmatch: a `$` anchor would let a trailing newline through.
_KEY_PART = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
_FILE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}(\.[a-z0-9]{1,10})?")


class InvalidKey(ValueError):
    pass


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


def validate_key(key: str) -> str:
    parts = key.split("/")
    if len(parts) < 2 or not all(_KEY_PART.fullmatch(p) for p in parts[:-1]) or not _FILE_PART.fullmatch(parts[-1]):
        raise InvalidKey(f"invalid artifact key: {key!r}")
    return key


class ArtifactStore(Protocol):
    def write_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredObject: ...
    def write_bytes(self, key: str, data: bytes) -> StoredObject: ...
    def write_from(self, key: str, produce: Callable[[Path], object]) -> StoredObject: ...
    def open(self, key: str) -> BinaryIO: ...
    def iter_chunks(self, key: str) -> Iterator[bytes]: ...
    def local_path(self, key: str) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def check(self) -> None: ...


class LocalArtifactStore:
    """A directory on local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        # Belt and braces: validated keys cannot escape, but never trust one check alone.
        if self.root not in path.parents:
            raise InvalidKey(f"invalid artifact key: {key!r}")
        return path

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def _begin(self, key: str) -> tuple[Path, Path]:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final, final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")

    @staticmethod
    def _finish(tmp: Path, final: Path, key: str, size: int, digest: hashlib._Hash) -> StoredObject:
        os.replace(tmp, final)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def write_stream(self, key: str, chunks: Iterable[bytes], max_bytes: int | None = None) -> StoredObject:
        final, tmp = self._begin(key)
        size, digest = 0, hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"File exceeds the limit of {max_bytes} bytes", {"max_bytes": max_bytes})
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._finish(tmp, final, key, size, digest)

    def write_bytes(self, key: str, data: bytes) -> StoredObject:
        return self.write_stream(key, [data])

    def write_from(self, key: str, produce: Callable[[Path], object]) -> StoredObject:
        """Let `produce` write a file (a library that wants a path: Parquet, say); it
        lands under `key` atomically, or not at all if `produce` fails."""
        final, tmp = self._begin(key)
        try:
            produce(tmp)
            digest, size = hashlib.sha256(), 0
            with tmp.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._finish(tmp, final, key, size, digest)

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        with self.open(key) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        parts = prefix.strip("/").split("/")
        if not parts or not all(_KEY_PART.fullmatch(p) for p in parts):
            raise InvalidKey(f"invalid artifact prefix: {prefix!r}")
        shutil.rmtree(self.root.joinpath(*parts), ignore_errors=True)

    def check(self) -> None:
        """Raises if the store cannot be written (used by health checks)."""
        probe = self.root / f".health-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
