"""Background checks that step aside while a forecast is being answered.

An API process runs threads that wake every second or so to look for work (the job
runner, the event relay, the schedulers) and mostly find none. Each check takes the GIL
from a forecast running in another thread, and hands it back at every database call,
each time after the forecast has waited for it: a check's half a millisecond of Python
cost a 100 ms LightGBM forecast about 4 ms in all. So a check waits until no forecast is
being answered (from its request's start until its answer is sent), but never more than
`MAX_WAIT_SECONDS`: under a steady load the background work runs that much late, not never.
"""

from __future__ import annotations

import threading
import time

# The longest a background check waits for the forecasts being answered.
MAX_WAIT_SECONDS = 1.0

_answering = 0
_changed = threading.Condition()


def begin() -> None:
    """A forecast is being answered; `end()` must follow, whatever happens."""
    global _answering
    with _changed:
        _answering += 1


def end() -> None:
    global _answering
    with _changed:
        _answering -= 1
        if not _answering:
            _changed.notify_all()


def wait_for_quiet(timeout: float = MAX_WAIT_SECONDS) -> None:
    """Until no forecast is being answered, or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with _changed:
        while _answering and (left := deadline - time.monotonic()) > 0:
            _changed.wait(left)
