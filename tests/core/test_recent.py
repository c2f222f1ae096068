"""Rows kept a moment per process (core/recent.py): served while fresh and while their tag
holds, never past their deadline, and never kept when a change overlapped their read."""

from __future__ import annotations

import pytest

from vur.core import recent
from vur.core.recent import Recent


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    return now


def test_a_value_is_served_for_its_seconds_and_its_tag(clock: list[float]) -> None:
    kept: Recent[str, str] = Recent(1.0)
    kept.keep("token", "ada", kept.mark(), tag=3)
    assert kept.get("token", tag=3) == "ada"
    assert kept.get("token", tag=4) is None  # e.g. a job ended since: the row may have changed
    assert kept.get("other", tag=3) is None
    clock[0] += 0.999
    assert kept.get("token", tag=3) == "ada"
    clock[0] += 0.001
    assert kept.get("token", tag=3) is None


def test_the_seconds_run_from_when_the_read_began(clock: list[float]) -> None:
    kept: Recent[str, str] = Recent(1.0)
    mark = kept.mark()
    clock[0] += 0.7  # a slow read
    kept.keep("token", "ada", mark)
    clock[0] += 0.3
    assert kept.get("token") is None


def test_a_deadline_shortens_an_entry(clock: list[float]) -> None:
    kept: Recent[str, str] = Recent(1.0)
    kept.keep("token", "ada", kept.mark(), until=clock[0] + 0.2)  # a token about to expire
    clock[0] += 0.2
    assert kept.get("token") is None


def test_forgetting_drops_every_entry_and_any_read_it_overlapped(clock: list[float]) -> None:
    kept: Recent[str, str] = Recent(1.0)
    kept.keep("a", "one", kept.mark())
    overlapped = kept.mark()  # a read begins...
    kept.forget()  # ...a change commits while it runs...
    kept.keep("b", "stale", overlapped)  # ...and what it found is not kept
    assert kept.get("a") is None and kept.get("b") is None
    kept.keep("b", "fresh", kept.mark())
    assert kept.get("b") == "fresh"


def test_the_entries_are_bounded(clock: list[float]) -> None:
    kept: Recent[int, int] = Recent(1.0, most=3)
    for key in range(4):
        kept.keep(key, key, kept.mark())
    assert [kept.get(key) for key in range(4)] == [None, None, None, 3]
