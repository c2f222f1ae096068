"""The WebSocket hub at `/ws`.

1. Authenticate: `?token=<access token>` on the URL, or a first message
   `{"type": "auth", "token": "..."}` within `AUTH_TIMEOUT` seconds. Anything else
   closes the socket with 1008 (policy violation).
2. Subscribe: `{"type": "subscribe", "topics": ["job:<id>", "training"]}` (and
   `unsubscribe`, `ping`).
3. Receive `{"type": ..., "topic": ..., "data": ...}` for every event of a subscribed
   topic that belongs to the caller's workspace.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pydantic_core
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from starlette.concurrency import run_in_threadpool

from vur.core.errors import VurError
from vur.core.events import Event, bus

router = APIRouter(tags=["realtime"])

AUTH_TIMEOUT = 10.0
STATIC_TOPICS = frozenset({"training", "predictions", "system", "alerts"})
# Topics a connection may follow at once: each id checked costs a query, and each held
# one is looked at for every event the process publishes.
MAX_TOPICS = 100
# "job:<uuid>" style topics: the prefix names a check that the id belongs to the workspace.
TopicCheck = Callable[[Any, uuid.UUID, uuid.UUID], bool]
_topic_checks: dict[str, TopicCheck] = {}


def register_topic(prefix: str, check: TopicCheck) -> None:
    """`check(session, workspace_id, object_id) -> bool` says whether the caller may follow it."""
    _topic_checks[prefix] = check


class Connection:
    def __init__(self, websocket: WebSocket, principal: Any) -> None:
        self.websocket = websocket
        self.principal = principal
        self.topics: set[str] = set()

    async def send(self, type_: str, data: dict[str, Any], topic: str | None = None) -> None:
        message: dict[str, Any] = {"type": type_, "data": data}
        if topic is not None:
            message["topic"] = topic
        await self.websocket.send_text(json.dumps(message, default=str))

    def wants(self, event: Event) -> bool:
        return event.topic in self.topics and (event.workspace_id is None or event.workspace_id == str(self.principal.workspace_id))


Authenticate = Callable[[Any, Any, str | None], Any]
_authenticator: Authenticate | None = None


def set_authenticator(authenticate: Authenticate) -> None:
    """`authenticate(session, settings, token) -> principal`, raising VurError when refused
    (identity provides it; core does not depend on identity)."""
    global _authenticator
    _authenticator = authenticate


def _authenticate(websocket: WebSocket, token: str | None) -> Any:
    assert _authenticator is not None, "create_app() sets the WebSocket authenticator"
    app = websocket.app
    with app.state.database.session() as session:
        return _authenticator(session, app.state.settings, token)


def _followable(websocket: WebSocket, principal: Any, topic: str) -> str | None:
    """The topic's canonical name if the caller may follow it, else None. Object ids are
    written the way events name them (lower-case, hyphenated), whatever the caller sent."""
    if topic in STATIC_TOPICS:
        return topic
    prefix, _, raw_id = topic.partition(":")
    check = _topic_checks.get(prefix)
    if check is None or not raw_id:
        return None
    try:
        object_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    with websocket.app.state.database.session() as session:
        return f"{prefix}:{object_id}" if check(session, principal.workspace_id, object_id) else None


async def _receive(websocket: WebSocket) -> str | None:
    """The next text frame, or None for a binary one. Raises WebSocketDisconnect when the
    client has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


def _canonical_ids(topics: list[str]) -> list[str]:
    names = []
    for topic in topics:
        prefix, _, raw_id = topic.partition(":")
        try:
            names.append(f"{prefix}:{uuid.UUID(raw_id)}")
        except ValueError:
            continue
    return names


async def _first_message_token(websocket: WebSocket) -> str | None:
    try:
        raw = await asyncio.wait_for(_receive(websocket), timeout=AUTH_TIMEOUT)
        message = pydantic_core.from_json(raw) if raw is not None else None
    except (TimeoutError, ValueError):
        return None
    if isinstance(message, dict) and message.get("type") == "auth" and isinstance(message.get("token"), str):
        return message["token"]
    return None


@router.websocket("/ws")
async def websocket_hub(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        token = websocket.query_params.get("token") or await _first_message_token(websocket)
    except WebSocketDisconnect:  # gone before it authenticated
        return
    try:
        principal = await run_in_threadpool(_authenticate, websocket, token)
    except VurError:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="authentication required")
        return
    connection = Connection(websocket, principal)
    handle, queue = bus.subscribe()
    try:
        await connection.send("welcome", {"user_id": str(principal.user_id), "workspace_id": str(principal.workspace_id)})
        reader = asyncio.create_task(_read_commands(connection))
        writer = asyncio.create_task(_write_events(connection, queue))
        done, pending = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            if (error := task.exception()) and not isinstance(error, WebSocketDisconnect):
                raise error
    except WebSocketDisconnect:
        pass
    finally:
        bus.unsubscribe(handle)


async def _write_events(connection: Connection, queue: asyncio.Queue[Event]) -> None:
    while True:
        event = await queue.get()
        if connection.wants(event):
            await connection.send(event.type, event.data, topic=event.topic)


async def _read_commands(connection: Connection) -> None:
    while True:
        raw = await _receive(connection.websocket)
        try:
            if raw is None:
                raise TypeError("binary frame")
            # pydantic-core's parser: it refuses arrays nested past its limit (ValueError), where
            # json.loads would exhaust the stack and take the connection down.
            message = pydantic_core.from_json(raw)
            kind = message["type"]
        except (ValueError, KeyError, TypeError, IndexError):
            await connection.send("error", {"message": "messages are JSON objects with a 'type', sent as text"})
            continue
        if kind == "ping":
            await connection.send("pong", {})
        elif kind in ("subscribe", "unsubscribe"):
            topics = message.get("topics")
            if not isinstance(topics, list) or not all(isinstance(t, str) and len(t) <= 200 for t in topics):
                await connection.send("error", {"message": "'topics' must be a list of topic names"})
                continue
            if kind == "subscribe" and len(connection.topics.union(topics)) > MAX_TOPICS:
                await connection.send("error", {"message": f"a connection follows at most {MAX_TOPICS} topics; unsubscribe from some first"})
                continue
            if kind == "unsubscribe":
                connection.topics.difference_update(topics)
                connection.topics.difference_update(_canonical_ids(topics))
                await connection.send("unsubscribed", {"topics": topics})
                continue
            allowed: list[str] = []
            rejected: list[str] = []
            for topic in topics:
                canonical = await run_in_threadpool(_followable, connection.websocket, connection.principal, topic)
                if canonical is None:
                    rejected.append(topic)
                elif canonical not in allowed:
                    allowed.append(canonical)
            connection.topics.update(allowed)
            await connection.send("subscribed", {"topics": allowed, "rejected": rejected})
        elif kind == "auth":
            await connection.send("error", {"message": "already authenticated"})
        else:
            await connection.send("error", {"message": f"unknown message type {kind!r}"})
