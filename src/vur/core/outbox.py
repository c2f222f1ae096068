"""Carries events from `vur worker` processes to the API processes that hold WebSockets.

The in-process bus reaches only its own process. A separate worker (`VUR_JOB_RUNNER=
external`, possibly on another machine) writes its events to the `event_outbox` table;
each API process polls the table (every POLL_SECONDS while events come, less often
while none do) and republishes new rows on its own bus, so every replica serves every
subscriber. Rows are short-lived: they are pruned after
`RETENTION`. With `VUR_REDIS_URL` set, Redis pub/sub (core/redis_events.py) does this instead.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import structlog
from sqlalchemy import JSON, BigInteger, Integer, Select, String, bindparam, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, Database, utcnow
from vur.core.events import Event, bus
from vur.core.foreground import wait_for_quiet

log = structlog.get_logger("vur.events")

RETENTION = timedelta(minutes=10)
POLL_SECONDS = 0.25
IDLE_POLL_SECONDS = 2.0
BATCH = 500


class OutboxEvent(Base):
    __tablename__ = "event_outbox"

    # BigInteger on PostgreSQL, INTEGER (SQLite's rowid alias) on SQLite: both autoincrement.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    workspace_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


@cache
def _events_after() -> Select[Any]:
    """Built once (a Core query on the table's columns): the relay asks four times a second."""
    events = OutboxEvent.__table__
    return select(events).where(events.c.id > bindparam("last_id")).order_by(events.c.id).limit(BATCH)


class OutboxWriter:
    """The bus forwarder of a `vur worker` process: every event becomes an outbox row."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def __call__(self, event: Event) -> None:
        try:
            with self.database.session() as session:
                session.add(OutboxEvent(topic=event.topic, type=event.type, workspace_id=event.workspace_id, data=event.data))
        except Exception as exc:  # a lost live update must not fail the job that sent it
            log.warning("outbox_write_failed", error=repr(exc), topic=event.topic)


class OutboxRelay:
    """Polls the outbox from a thread of an API process and republishes on its bus."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vur-outbox-relay", daemon=True)
        self._last_id = 0

    def start(self) -> None:
        with self.database.session() as session:
            self._last_id = session.scalar(select(func.max(OutboxEvent.id))) or 0
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def relay_once(self) -> int:
        rows = self.database.read(_events_after(), {"last_id": self._last_id})
        for row in rows:
            bus.publish(Event(topic=row.topic, type=row.type, data=row.data, workspace_id=row.workspace_id, at=row.created_at.isoformat()))
            self._last_id = row.id
        return len(rows)

    def prune(self) -> None:
        with self.database.session() as session:
            session.execute(delete(OutboxEvent).where(OutboxEvent.created_at < utcnow() - RETENTION))

    def _run(self) -> None:
        pruned_at, wait = 0.0, POLL_SECONDS
        while not self._stop.is_set():
            try:
                wait_for_quiet()
                relayed = self.relay_once()
                if relayed == BATCH:
                    continue
                # Every POLL_SECONDS while events come (a job's progress); while none do, each
                # wait doubles up to IDLE_POLL_SECONDS: the API process's own requests pay for
                # every wake of this thread (it takes the GIL), and most of the time no
                # `vur worker` writes here at all.
                wait = POLL_SECONDS if relayed else min(wait * 2, IDLE_POLL_SECONDS)
                now = time.monotonic()
                if now - pruned_at > 60:
                    self.prune()
                    pruned_at = now
            except Exception as exc:  # the database went away: keep trying
                log.warning("outbox_relay_error", error=repr(exc))
            self._stop.wait(wait)
