"""The request id of the request being served, readable anywhere (logs, error bodies)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_request_id: ContextVar[str] = ContextVar("request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


def accept_request_id(incoming: str | None) -> str:
    """Echo a sane incoming id; anything else (too long, odd characters) is replaced."""
    value = incoming if incoming and _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    _request_id.set(value)
    return value
