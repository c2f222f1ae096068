"""Structured logs: one JSON object per line, carrying the request id when there is one.

Recent records are also kept in a bounded in-memory ring so that monitoring can show them.
A job process of the embedded runner also hands each kept record to the runner's queue
(`forward_records_to`), and the API process puts it in its own ring (`keep_forwarded`),
not writing it out again: the job process already did.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from vur.core.request_context import current_request_id

# Keys whose values are never kept in the ring (it is readable by every workspace member).
_SECRET_KEY = re.compile(r"password|passwd|token|secret|authorization|api_?key|cookie", re.IGNORECASE)


class RecentRecords:
    """The newest log records of this process, oldest dropped first; safe across threads."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=size)

    def resize(self, size: int) -> None:
        # In place: loggers cached before a reconfiguration keep feeding this object.
        with self._lock:
            if size != self._records.maxlen:
                self._records = deque(self._records, maxlen=size)

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[dict[str, Any]]:
        """Oldest first."""
        with self._lock:
            return list(self._records)


RECENT_RECORDS = RecentRecords(2000)


def _add_request_id(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    request_id = current_request_id()
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | bool | None) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return str(value)


def _kept(record: dict[str, Any]) -> dict[str, Any]:
    """A copy with JSON-ready values and without secrets."""
    return {str(key): _json_safe(value) for key, value in record.items() if not _SECRET_KEY.search(str(key))}


@dataclass(frozen=True)
class ForwardedRecord:
    """A record a job process kept, on its way to the API process's ring."""

    record: dict[str, Any]


_forward: Callable[[ForwardedRecord], object] | None = None


def forward_records_to(forward: Callable[[ForwardedRecord], object] | None) -> None:
    """In a job process of the embedded runner: every kept record also goes to `forward`
    (which must not block)."""
    global _forward
    _forward = forward


def keep_forwarded(message: ForwardedRecord) -> None:
    """In the API process: another process's record into the ring only. One without a
    readable level and timestamp (the monitoring filters need both) is left out."""
    record = _kept(message.record)
    level, timestamp = record.get("level"), record.get("timestamp")
    if not isinstance(level, str) or not isinstance(timestamp, str):
        return
    try:
        datetime.fromisoformat(timestamp)
    except ValueError:
        return
    RECENT_RECORDS.append(record)


def _remember(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # The record goes on unchanged.
    record = _kept(event_dict)
    RECENT_RECORDS.append(record)
    if _forward is not None:
        _forward(ForwardedRecord(record))
    return event_dict


def configure_logging(level: str = "INFO", json: bool = True, buffer_size: int = 2000) -> None:
    """Records below `level` are dropped before any processor runs, so the ring holds
    only what is also written out."""
    RECENT_RECORDS.resize(buffer_size)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_request_id,
            structlog.processors.format_exc_info,
            _remember,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
