"""Per-request plumbing as one pure ASGI middleware: request id, access log, metrics."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vur.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from vur.core.request_context import REQUEST_ID_HEADER, accept_request_id

log = structlog.get_logger("vur.http")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    # Label by the route's template, never the raw path: ids would explode cardinality.
    return getattr(route, "path", None) or "unmatched"


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

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message["headers"] = headers
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
