"""Per-request plumbing as pure ASGI middleware: request id, access log, metrics, the
last line of defence for the error envelope, and request body limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from http import HTTPStatus

import structlog
from starlette.routing import compile_path, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vur.core.errors import STATUS_MESSAGES, BodyTooLarge, body_too_large
from vur.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from vur.core.request_context import REQUEST_ID_HEADER, accept_request_id

log = structlog.get_logger("vur.http")

# The most of a non-JSON error body kept as the envelope's message.
_MAX_PLAIN_MESSAGE = 200
# Headers of the replaced response that stay meaningful on the envelope.
_DROPPED_ON_REWRITE = {b"content-length", b"content-type", b"content-encoding", b"transfer-encoding"}


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    # Label by the route's template, never the raw path: ids would explode cardinality.
    return getattr(route, "path", None) or "unmatched"


def _envelope_message(status: int, body: bytes, content_type: bytes) -> str:
    """A short plain-text body ("Disallowed CORS origin") is a better message than the
    status phrase; anything else (HTML, binary, long text) is not shown."""
    if status in STATUS_MESSAGES:
        return STATUS_MESSAGES[status]
    if content_type.startswith(b"text/plain"):
        text = body.decode("utf-8", "replace").strip()
        if text and len(text) <= _MAX_PLAIN_MESSAGE and text.isprintable():
            return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _needs_envelope(scope: Scope, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """An error response that did not come from our exception handlers (Starlette's CORS
    400, a body-limit 413 sent as plain text...) is rewritten into the envelope."""
    if status < 400 or scope.get("method") == "HEAD":
        return False
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()
    return not (content_type.startswith(b"application/json") or content_type.startswith(b"application/problem+json"))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        request_id = accept_request_id(incoming)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500
        held_start: Message | None = None  # the start of an error response being rewritten
        held_body = b""

        async def send_with_id(message: Message) -> None:
            nonlocal status, held_start, held_body
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message["headers"] = headers
                if _needs_envelope(scope, status, headers):
                    held_start, held_body = message, b""
                    return
            elif message["type"] == "http.response.body" and held_start is not None:
                if len(held_body) <= _MAX_PLAIN_MESSAGE:
                    held_body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                await _send_envelope(send, held_start, held_body, request_id)
                held_start = None
                return
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(duration)
            if route not in ("/health", "/metrics"):
                log.info(
                    "request",
                    method=method,
                    path=scope.get("path", ""),
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                )


async def _send_envelope(send: Send, start: Message, body: bytes, request_id: str) -> None:
    original = start["headers"]
    content_type = next((v for k, v in original if k.lower() == b"content-type"), b"").lower()
    status = start["status"]
    payload = json.dumps(
        {"error": _envelope_message(status, body, content_type), "details": {}, "request_id": request_id}, separators=(",", ":")
    ).encode()
    headers = [(k, v) for k, v in original if k.lower() not in _DROPPED_ON_REWRITE]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class BodyLimitMiddleware:
    """Request body limits: `upload_limit` on a multipart body sent to an upload route
    (`upload_paths` are their templates, "/api/v1/machines/{machine_id}/train"), `limit`
    on every other body: a route that takes a file or JSON (POST /predictions/batch)
    takes its JSON at the JSON limit.

    Placed inside RequestContextMiddleware so that a refusal is the envelope with the
    request id. A declared Content-Length over the limit is refused before the app runs;
    any other body is counted as `receive` yields it (chunked ones too) and never held
    here: an upload streams on to its route."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int, upload_paths: Iterable[str]) -> None:
        self.app = app
        self.limit, self.upload_limit = limit, upload_limit
        self.upload_patterns = [compile_path(path)[0] for path in upload_paths]

    def limit_for(self, scope: Scope) -> int:
        if not _header(scope, b"content-type").lower().startswith(b"multipart/form-data"):
            return self.limit
        path = get_route_path(scope)
        return self.upload_limit if any(pattern.match(path) for pattern in self.upload_patterns) else self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await body_too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised where the body is read; the exception handlers answer the envelope.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted_receive, send)


def _header(scope: Scope, name: bytes) -> bytes:
    return next((v for k, v in scope["headers"] if k == name), b"")


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value.isdigit() else None
