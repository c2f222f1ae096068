"""Structured logs: one JSON object per line, carrying the request id when there is one.

Recent records are also kept in a bounded in-memory ring so that monitoring can show them.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from typing import Any

import structlog

from vur.core.request_context import current_request_id

RECENT_RECORDS: deque[dict[str, Any]] = deque(maxlen=1000)


def _add_request_id(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    request_id = current_request_id()
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def _remember(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    RECENT_RECORDS.append(dict(event_dict))
    return event_dict


def configure_logging(level: str = "INFO", json: bool = True) -> None:
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
