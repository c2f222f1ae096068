"""Rows a process read a moment ago, kept for the next requests that need them: a
token's user, a forecast's model. Their lookup (a pooled connection, one query) costs a
request more than the rest of its own work.

Exact within the process: a change committed here to what they were read from calls
`forget` (from an after-commit hook), which drops every entry, and a read that overlapped
it is not kept (it may hold the row as it was). A change committed by another process (a
second API worker, a job's process, the CLI) is seen once the entry's seconds are over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Mark(NamedTuple):
    """Taken before a read: when it began, and how many times the entries had been forgotten."""

    forgotten: int
    at: float


class Recent(Generic[Key, Value]):
    """Each key's value, kept `seconds` from when its read began (never past an entry's
    `until`), and used only while the `tag` asked for is the one it was kept with."""

    def __init__(self, seconds: float, most: int = 10_000) -> None:
        self.seconds, self.most = seconds, most
        self._entries: dict[Key, tuple[float, Hashable, Value]] = {}
        self._forgotten = 0
        # Held to check a read's mark and store it, and to forget: a change committed
        # between the two would otherwise let a stale read in.
        self._lock = threading.Lock()

    def get(self, key: Key, tag: Hashable = None) -> Value | None:
        held = self._entries.get(key)
        if held is not None and held[0] > time.monotonic() and held[1] == tag:
            return held[2]
        return None

    def mark(self) -> Mark:
        return Mark(self._forgotten, time.monotonic())

    def keep(self, key: Key, value: Value, mark: Mark, tag: Hashable = None, until: float | None = None) -> None:
        """Keep what a read begun at `mark` found, unless the entries were forgotten since.
        `until`: a `time.monotonic()` past which the value must not be used."""
        expires = mark.at + self.seconds
        with self._lock:
            if mark.forgotten != self._forgotten:
                return
            if len(self._entries) >= self.most:  # a bound, not an eviction policy: entries live a second
                self._entries.clear()
            self._entries[key] = (expires if until is None else min(expires, until), tag, value)

    def forget(self) -> None:
        with self._lock:
            self._forgotten += 1
            self._entries.clear()
