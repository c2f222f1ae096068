"""A daemon thread that calls one function on an interval: the API process's schedulers
(prediction streams, alert checks) are each one of these."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from vur.core.foreground import wait_for_quiet

log = structlog.get_logger("vur.periodic")


class PeriodicTask:
    def __init__(self, name: str, seconds: float, action: Callable[[], object]) -> None:
        self.name, self.seconds, self.action = name, seconds, action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            wait_for_quiet()
            started = time.monotonic()
            try:
                self.action()
            except Exception as exc:  # the database is away, say: try again next time
                log.warning("periodic_task_error", task=self.name, error=repr(exc))
            self._stop.wait(max(0.0, self.seconds - (time.monotonic() - started)))
