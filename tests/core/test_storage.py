"""The artifact store: keys cannot escape the root, writes are bounded and atomic,
reads stream, and an uploaded file's name never becomes a path."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, hourly_csv
from vur.core.errors import PayloadTooLarge
from vur.core.storage import CHUNK_BYTES, InvalidKey, LocalArtifactStore, validate_key
from vur.settings import Settings


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "root")


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- keys -------------------------------------------------------------------

BAD_KEYS = [
    "../../etc/passwd",
    "/etc/passwd",
    "datasets/../../x",
    "datasets/../x.csv",
    "datasets/./x.csv",
    "a/b/c\x00",
    "a/b\x00/c",
    "a/b/c\n",
    "datasets\n/x.csv",
    "a/b/c.csv\n",
    "Datasets/ws/file.csv",
    "datasets/WS/file.csv",
    "datasets//file.csv",
    "/datasets/file.csv",
    "datasets/file.csv/",
    "datasets/ws/",
    "",
    "/",
    "file.csv",
    "datasets\\..\\x.csv",
    "datasets/ws/.hidden",
    "datasets/ws/-x.csv",
    "datasets/ws/file.tar.gz.exe.csv",
    "datasets/ws/file.CSV",
    "datasets/ws/ file.csv",
    "datasets/" + "a" * 65 + "/file.csv",
    "datasets/ws/" + "a" * 65,
    "datasets/ws/file\u0430.csv",  # a Cyrillic "a"
    "datasets/ws/..",
    "~/x/y",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_everywhere(store: LocalArtifactStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)
    for operation in (
        lambda: store.write_bytes(key, b"x"),
        lambda: store.write_stream(key, [b"x"]),
        lambda: store.open(key),
        lambda: list(store.iter_chunks(key)),
        lambda: store.local_path(key),
        lambda: store.exists(key),
        lambda: store.size(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(InvalidKey):
            operation()
    assert all_files(store.root) == []
    assert not (store.root.parent / "x").exists()


@pytest.mark.parametrize(
    "key",
    ["datasets/0123abcd/f.csv", "models/ws_1/run-2/forecast.json", "a/b", "datasets/ws/File_Name-1.parquet", "a/" + "b" * 64 + "/" + "c" * 64],
)
def test_good_keys_are_accepted(store: LocalArtifactStore, key: str) -> None:
    assert validate_key(key) == key
    stored = store.write_bytes(key, b"hello")
    assert stored.key == key and stored.size == 5
    assert store.local_path(key) == store.root.joinpath(*key.split("/"))
    assert store.local_path(key).read_bytes() == b"hello"


def test_a_symlink_out_of_the_root_is_not_followed(store: LocalArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (store.root / "datasets").mkdir()
    (store.root / "datasets" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        store.open("datasets/link/secret.txt")
    with pytest.raises(InvalidKey):
        store.write_bytes("datasets/link/planted.txt", b"x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# --- writes -----------------------------------------------------------------


def test_write_stream_returns_size_and_digest(store: LocalArtifactStore) -> None:
    chunks = [os.urandom(1000) for _ in range(7)]
    stored = store.write_stream("datasets/ws/f.bin", iter(chunks))
    data = b"".join(chunks)
    assert stored.size == len(data) == store.size("datasets/ws/f.bin")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists("datasets/ws/f.bin")
    with store.open("datasets/ws/f.bin") as handle:
        assert handle.read() == data


def test_write_stream_at_the_limit_is_accepted(store: LocalArtifactStore) -> None:
    stored = store.write_stream("datasets/ws/f.bin", [b"a" * 60, b"b" * 40], max_bytes=100)
    assert stored.size == 100


def test_write_stream_over_the_limit_raises_and_leaves_nothing(store: LocalArtifactStore) -> None:
    produced: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(1000):
            produced.append(i)
            yield b"x" * 64

    with pytest.raises(PayloadTooLarge) as caught:
        store.write_stream("datasets/ws/big.csv", chunks(), max_bytes=1000)
    assert caught.value.status_code == 413
    assert caught.value.details == {"max_bytes": 1000}
    # It stops reading as soon as the limit is crossed, rather than draining the input.
    assert len(produced) == 16
    assert all_files(store.root) == []
    assert not store.exists("datasets/ws/big.csv")


def test_a_failing_write_leaves_no_temporary_file(store: LocalArtifactStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial data"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.write_stream("datasets/ws/f.csv", chunks())
    assert all_files(store.root) == []


def test_an_overwrite_is_atomic(store: LocalArtifactStore) -> None:
    """While a new version is being written, readers see the old one whole; if the new
    write fails, the old version survives untouched."""
    key = "models/ws/run/forecast.json"
    store.write_bytes(key, b"old version")
    halfway, resume = threading.Event(), threading.Event()

    def slow_chunks() -> Iterator[bytes]:
        yield b"new "
        halfway.set()
        assert resume.wait(10)
        yield b"version"

    writer = threading.Thread(target=store.write_stream, args=(key, slow_chunks()))
    writer.start()
    assert halfway.wait(10)
    try:
        assert store.local_path(key).read_bytes() == b"old version"
        part_files = [p for p in all_files(store.root) if p.name.endswith(".part")]
        assert len(part_files) == 1 and part_files[0].parent == store.local_path(key).parent
    finally:
        resume.set()
        writer.join(10)
    assert store.local_path(key).read_bytes() == b"new version"
    assert all_files(store.root) == [store.local_path(key)]

    def failing() -> Iterator[bytes]:
        yield b"broken"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.write_stream(key, failing())
    assert store.local_path(key).read_bytes() == b"new version"
    assert all_files(store.root) == [store.local_path(key)]


# --- reads ------------------------------------------------------------------


def test_iter_chunks_streams_in_bounded_chunks(store: LocalArtifactStore) -> None:
    data = os.urandom(CHUNK_BYTES * 2 + 123)
    store.write_bytes("datasets/ws/big.bin", data)
    chunks = store.iter_chunks("datasets/ws/big.bin")
    assert iter(chunks) is chunks  # a lazy generator, not a list read whole
    first = next(chunks)
    assert len(first) == CHUNK_BYTES
    rest = list(chunks)
    assert [len(c) for c in rest] == [CHUNK_BYTES, 123]
    assert first + b"".join(rest) == data


def test_iter_chunks_of_empty_and_missing_files(store: LocalArtifactStore) -> None:
    store.write_bytes("datasets/ws/empty.bin", b"")
    assert list(store.iter_chunks("datasets/ws/empty.bin")) == []
    assert store.size("datasets/ws/empty.bin") == 0
    with pytest.raises(FileNotFoundError):
        list(store.iter_chunks("datasets/ws/missing.bin"))
    assert not store.exists("datasets/ws/missing.bin")


# --- deletes ----------------------------------------------------------------


def test_delete_and_delete_prefix(store: LocalArtifactStore) -> None:
    for key in ("datasets/ws1/a.csv", "datasets/ws1/b.csv", "datasets/ws2/c.csv", "models/ws1/m/f.json"):
        store.write_bytes(key, b"x")
    store.delete("datasets/ws1/a.csv")
    store.delete("datasets/ws1/a.csv")  # deleting twice is fine
    assert not store.exists("datasets/ws1/a.csv") and store.exists("datasets/ws1/b.csv")
    store.delete_prefix("datasets/ws1")
    assert not store.exists("datasets/ws1/b.csv")
    assert store.exists("datasets/ws2/c.csv") and store.exists("models/ws1/m/f.json")
    store.delete_prefix("datasets/nothing-here")  # a missing prefix is fine


@pytest.mark.parametrize(
    "prefix",
    ["", "/", "//", "..", "../..", "datasets/..", "datasets/../models", "./datasets", "datasets//ws", "Datasets", "datasets/ws\x00", "datasets\n", "datasets/*", "~", "datasets/ws/a.csv"],
)
def test_delete_prefix_refuses_odd_prefixes(store: LocalArtifactStore, tmp_path: Path, prefix: str) -> None:
    store.write_bytes("datasets/ws/a.csv", b"x")
    (tmp_path / "keep.txt").write_text("outside the store")
    with pytest.raises(InvalidKey):
        store.delete_prefix(prefix)
    assert store.exists("datasets/ws/a.csv")
    assert (tmp_path / "keep.txt").exists()


def test_check_leaves_nothing_behind(store: LocalArtifactStore) -> None:
    store.check()
    assert list(store.root.iterdir()) == []


# --- over HTTP --------------------------------------------------------------


@pytest.mark.anyio
async def test_upload_file_name_never_becomes_a_path(client: httpx.AsyncClient, account: Account, settings: Settings, tmp_path: Path) -> None:
    artifacts = settings.artifacts_dir.resolve()
    before = set(all_files(artifacts)) if artifacts.exists() else set()
    outside = [settings.data_dir.parent / "etc" / "passwd.csv", Path("/etc/passwd.csv"), artifacts.parent.parent / "etc" / "passwd.csv"]
    csv_path = hourly_csv(tmp_path / "data.csv", hours=48)
    for evil in ("../../etc/passwd.csv", "..\\..\\etc\\passwd.csv", "/etc/passwd.csv"):
        with csv_path.open("rb") as handle:
            response = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": (evil, handle, "text/csv")})
        assert response.status_code == 201, response.text
        assert response.json()["filename"] == "passwd.csv"
    for path in outside:
        assert not path.exists(), path
    new = set(all_files(artifacts)) - before
    # Everything the uploads stored lies under datasets/<workspace hex>/, with names VUR chose.
    assert len(new) >= 3
    workspace_dir = artifacts / "datasets" / account.workspace_id.replace("-", "")
    for path in new:
        assert workspace_dir in path.resolve().parents, path
        assert "passwd" not in str(path.relative_to(artifacts)) and "etc" not in path.relative_to(artifacts).parts
    assert list(settings.data_dir.parent.rglob("*passwd*")) == []
