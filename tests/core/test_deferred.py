"""Writes made after their answer is sent (`vur.core.deferred`), and background checks
that step aside while a forecast runs (`vur.core.foreground`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.orm import Session

from vur.core import foreground
from vur.core.db import Database
from vur.core.deferred import DEFERRED_WRITE_FAILURES, MAX_BACKLOG

_metadata = MetaData()
_written = Table("written", _metadata, Column("n", Integer, nullable=False))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'deferred.db'}")
    _metadata.create_all(database.engine)
    yield database
    database.dispose()


def _write(n: int) -> Callable[[Session], None]:
    def write(session: Session) -> None:
        session.execute(_written.insert(), {"n": n})

    return write


def _rows(database: Database) -> list[int]:
    return list(database.read(select(_written.c.n)))


def test_writes_land_in_order_and_wait_sees_every_one_handed_over_before_it(scratch: Database) -> None:
    for n in range(50):
        scratch.deferred.submit("test", _write(n))
    assert scratch.deferred.wait(10)
    assert [row.n for row in _rows(scratch)] == list(range(50))


def test_wait_holds_until_the_writes_before_it_end(scratch: Database) -> None:
    release = threading.Event()
    scratch.deferred.submit("test", lambda session: release.wait(10))
    scratch.deferred.submit("test", _write(1))
    assert not scratch.deferred.wait(0.2)  # the first write still runs: the second is not in yet
    assert _rows(scratch) == []
    release.set()
    assert scratch.deferred.wait(10)
    assert [row.n for row in _rows(scratch)] == [1]


def test_a_failed_write_is_rolled_back_counted_and_the_next_ones_still_land(scratch: Database, caplog: pytest.LogCaptureFixture) -> None:
    def fails(session: Session) -> None:
        session.execute(_written.insert(), {"n": 99})
        raise RuntimeError("the record cannot be written")

    failures = DEFERRED_WRITE_FAILURES.labels("failing")._value.get()
    scratch.deferred.submit("failing", fails)
    scratch.deferred.submit("test", _write(2))
    assert scratch.deferred.wait(10)
    assert [row.n for row in _rows(scratch)] == [2]  # nothing of the failed write is left
    assert DEFERRED_WRITE_FAILURES.labels("failing")._value.get() == failures + 1
    assert "a deferred failing write failed" in caplog.text


def test_a_full_backlog_holds_new_writes_back_until_the_writer_catches_up(scratch: Database) -> None:
    release = threading.Event()
    scratch.deferred.submit("test", lambda session: release.wait(10))
    for n in range(MAX_BACKLOG - 1):
        scratch.deferred.submit("test", _write(n))
    assert not scratch.deferred.has_room()
    assert not scratch.deferred.wait_for_room(0.1)
    release.set()
    assert scratch.deferred.wait_for_room(10)
    assert scratch.deferred.wait(10)
    assert len(_rows(scratch)) == MAX_BACKLOG - 1


def test_background_checks_wait_for_forecasts_being_answered_and_no_longer_than_their_bound() -> None:
    started = time.monotonic()
    foreground.wait_for_quiet(5)
    assert time.monotonic() - started < 4  # nothing is being answered: it does not wait out its bound

    foreground.begin()
    answered = threading.Event()

    def answer() -> None:
        answered.set()
        foreground.end()

    threading.Timer(0.2, answer).start()
    foreground.wait_for_quiet(5)
    assert answered.is_set()  # it returned once the answer was out

    foreground.begin()
    try:
        started = time.monotonic()
        foreground.wait_for_quiet(0.3)
        assert time.monotonic() - started >= 0.3  # bounded: it goes on while a forecast is being answered
    finally:
        foreground.end()
