"""One error base class and the handlers that render every failure as the envelope

    {"error": str, "details": object, "request_id": str}

Domains subclass `VurError` in their `exceptions.py`; routes never build error bodies.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException as StarletteHTTPException

from vur.core.request_context import REQUEST_ID_HEADER, current_request_id

log = structlog.get_logger("vur.errors")


class VurError(Exception):
    status_code = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(VurError):
    status_code = 400


class Unauthorized(VurError):
    status_code = 401

    def __init__(self, message: str = "Not authenticated", details: dict[str, Any] | None = None):
        super().__init__(message, details, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(VurError):
    status_code = 403


class NotFound(VurError):
    status_code = 404

    @classmethod
    def for_id(cls, resource: str, id_: object) -> NotFound:
        return cls(f"{resource} with id '{id_}' not found")


class Conflict(VurError):
    status_code = 409


class PayloadTooLarge(VurError):
    status_code = 413


class UnprocessableEntity(VurError):
    status_code = 422


class TooManyRequests(VurError):
    status_code = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, {"retry_after_seconds": retry_after}, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(VurError):
    status_code = 503


class EnvelopeResponse(JSONResponse):
    """The error envelope's JSON. A message or detail that echoes the input may hold what
    UTF-8 cannot encode (a lone surrogate, which a JSON escape like "\\udc83" makes): that
    body is written with ASCII escapes, still the same JSON, rather than failing as a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def error_response(status_code: int, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = current_request_id()
    # Details are JSON whatever a service put in them (an id as a UUID, say): an error answer never fails.
    body = {"error": message, "details": to_jsonable_python(details, fallback=str) if details is not None else {}, "request_id": request_id}
    all_headers = {REQUEST_ID_HEADER: request_id, **(headers or {})}
    return EnvelopeResponse(body, status_code=status_code, headers=all_headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    # ("body", "user", "email") -> "user.email"; the "body"/"query" prefix says where, keep it
    # only when nothing else names the field.
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_details(errors: list[dict[str, Any]]) -> dict[str, str]:
    details: dict[str, str] = {}
    for err in errors:
        key = _field_path(tuple(err.get("loc", ())))
        message = err.get("msg", "Invalid value")
        details[key] = f"{details[key]}; {message}" if key in details else message
    return details


async def _vur_error(_: Request, exc: VurError) -> JSONResponse:
    return error_response(exc.status_code, exc.message, exc.details, exc.headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    invalid_json = [e for e in errors if e.get("type") == "json_invalid"]
    if invalid_json:
        # The loc of a JSON error is ("body", <character offset>): name the body, not the offset.
        first = invalid_json[0]
        offset = first.get("loc", ())[-1] if len(first.get("loc", ())) > 1 else None
        where = f" at character {offset}" if isinstance(offset, int) else ""
        return error_response(400, "Malformed JSON body", {"body": f"{first.get('msg', 'JSON decode error')}{where}"})
    return error_response(422, "Validation failed", validation_details(errors))


# Our wording for the errors Starlette raises itself (its own is "Content Too Large"...).
STATUS_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    messages = STATUS_MESSAGES
    message = exc.detail if isinstance(exc.detail, str) and exc.status_code not in messages else messages.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, message, {}, dict(exc.headers or {}))


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` once a body passes its limit. A Starlette HTTPException on
    purpose: FastAPI lets those through while it reads a body (anything else there
    becomes a 400 "error parsing the body")."""

    def __init__(self, limit: int) -> None:
        super().__init__(413)
        self.limit = limit


def body_too_large(limit: int) -> JSONResponse:
    return error_response(413, STATUS_MESSAGES[413], {"max_bytes": limit})


async def _body_too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
    return body_too_large(exc.limit)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, method=request.method, error=repr(exc))
    return error_response(500, "Internal server error", {})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VurError, _vur_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(BodyTooLarge, _body_too_large)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)
