"""The internal event bus: domains publish, the WebSocket hub (and anything else) listens.

In-process now: subscribers are asyncio queues on the API's event loop, and `publish`
is safe to call from any thread. A job running in a worker process publishes through
a forwarder that carries the event back to the process that owns the bus.

Events that describe database changes are published only after the transaction
commits (`publish_after_commit`), so a rolled-back write announces nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from vur.core.db import utcnow


@dataclass(frozen=True)
class Event:
    topic: str
    type: str
    data: dict[str, Any]
    # None means visible to every authenticated socket (e.g. system metrics).
    workspace_id: str | None = None
    at: str = field(default_factory=lambda: utcnow().isoformat())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]] = {}
        self._forward: Callable[[Event], None] | None = None

    def forward_to(self, forward: Callable[[Event], None] | None) -> None:
        """Send every event to `forward` instead of local subscribers: in a worker process,
        and in every process when events travel through Redis."""
        self._forward = forward

    def subscribe(self, maxsize: int = 1000) -> tuple[int, asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        loop = asyncio.get_running_loop()
        with self._lock:
            handle = id(queue)
            self._subscribers[handle] = (loop, queue)
        return handle, queue

    def unsubscribe(self, handle: int) -> None:
        with self._lock:
            self._subscribers.pop(handle, None)

    def publish(self, event: Event) -> None:
        if self._forward is not None:
            self._forward(event)
            return
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """To this process's subscribers only (what a relay does with events from elsewhere)."""
        with self._lock:
            targets = list(self._subscribers.values())
        for loop, queue in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, event)
            except RuntimeError:  # the subscriber's loop has closed
                continue

def _offer(queue: asyncio.Queue[Event], event: Event) -> None:
    # A slow consumer loses events rather than growing memory without bound.
    if not queue.full():
        queue.put_nowait(event)


bus = EventBus()

_PENDING = "vur_pending_events"


def publish_after_commit(session: Session, event: Event) -> None:
    session.info.setdefault(_PENDING, []).append(event)


@sa_event.listens_for(Session, "after_commit")
def _flush_pending(session: Session) -> None:
    for pending in session.info.pop(_PENDING, []):
        bus.publish(pending)


@sa_event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
