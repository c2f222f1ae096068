"""Writes made after the answer is sent: a request whose answer does not depend on
what it records (a forecast's record) hands the record to this process's writer thread
and answers at once, instead of holding the answer for its transaction.

The writer runs the writes in the order they came, each in its own transaction, so a
client's later request is recorded after its earlier one. Every other request of this
process that reads the database waits first for the writes handed over before it came
(`get_session`, `/metrics`): a client that has its answer reads its record. Another
API process sees the record once it is committed, a few milliseconds later. A write
that fails is logged and counted (`vur_deferred_write_failures_total`); the answer is
already gone. One still queued when the process is killed is lost; a graceful stop
waits for them (`wait`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter
from sqlalchemy.orm import Session, sessionmaker

from vur.core.metrics import REGISTRY

log = logging.getLogger(__name__)

DEFERRED_WRITE_FAILURES = Counter("vur_deferred_write_failures_total", "Writes made after their answer was sent that failed", ["kind"], registry=REGISTRY)

# Writes queued at most: past it, a request hands its write over only once the writer has caught up.
MAX_BACKLOG = 512

Write = Callable[[Session], None]


class DeferredWrites:
    """One thread that runs the writes handed to it, one at a time, in order."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._queue: deque[tuple[str, Write]] = deque()
        self._handed = 0  # writes handed over so far
        self._done = 0  # of which ended (committed or failed)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, write: Write) -> None:
        """Run `write(session)` in a transaction of its own, after the writes before it.
        Never waits: it is called on the event loop, once the answer is sent."""
        with self._changed:
            self._queue.append((kind, write))
            self._handed += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vur-deferred-writes", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Whether every write handed over before this call has ended within `timeout`
        seconds (at once when none is pending: the common case costs a lock)."""
        with self._changed:
            handed = self._handed
            return self._changed.wait_for(lambda: self._done >= handed, timeout)

    def wait_for_room(self, timeout: float) -> bool:
        """Whether the backlog is under MAX_BACKLOG within `timeout` seconds: a writer that
        falls behind holds new requests back instead of queueing without bound."""
        with self._changed:
            return self._changed.wait_for(self.has_room, timeout)

    def has_room(self) -> bool:
        return self._handed - self._done < MAX_BACKLOG

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                kind, write = self._queue.popleft()
            try:
                with self._sessions.begin() as session:
                    write(session)
            except Exception:  # one failed write must not stop the ones after it
                log.exception("a deferred %s write failed", kind)
                DEFERRED_WRITE_FAILURES.labels(kind).inc()
            finally:
                with self._changed:
                    self._done += 1
                    self._changed.notify_all()
