"""Background checks that step aside while a forecast runs.

An API process runs threads that wake every second or so to look for work (the job
runner, the event relay, the schedulers) and mostly find none. Each check takes the GIL
from a forecast running in another thread, and hands it back at every database call,
each time after the forecast has waited for it: a check's half a millisecond of Python
cost a 100 ms LightGBM forecast about 4 ms in all. So a check waits for the forecasts in
progress to end first, but never more than `MAX_WAIT_SECONDS`: under a steady load the
background work runs that much late, not never.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# The longest a background check waits for the forecasts in progress, and how long after
# the last one ends (its answer is still being written out on the event loop).
MAX_WAIT_SECONDS = 1.0
SETTLE_SECONDS = 0.005

_busy = 0
_changed = threading.Condition()


@contextmanager
def forecasting() -> Iterator[None]:
    """While a request's forecast runs."""
    global _busy
    with _changed:
        _busy += 1
    try:
        yield
    finally:
        with _changed:
            _busy -= 1
            if not _busy:
                _changed.notify_all()


def wait_for_quiet(timeout: float = MAX_WAIT_SECONDS) -> None:
    """Until no forecast runs (and its answer has had a moment to go out), or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    waited = False
    with _changed:
        while _busy and (left := deadline - time.monotonic()) > 0:
            _changed.wait(left)
            waited = True
    if waited:
        time.sleep(SETTLE_SECONDS)
