"""Live updates from separate workers: a `vur worker` process writes its events to the
outbox table, and every API process relays new rows to its WebSocket subscribers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Account
from tests.core.test_websocket import authed, nothing_arrives, receive_until, subscribe
from tests.jobs.test_runner import enqueue, load, wait_for
from tests.jobs.test_worker_crash import WorkerProcess
from vur.core.db import Database
from vur.core.events import Event
from vur.core.outbox import OutboxEvent, OutboxWriter
from vur.jobs.models import JobStatus


def test_a_vur_worker_writes_its_job_events_to_the_outbox(fresh_url: str, db: Database, tmp_path: Path) -> None:
    worker = WorkerProcess(fresh_url, tmp_path, "outbox-worker")
    try:
        job_id = enqueue(db, steps=3, delay=0.05)
        wait_for(lambda: load(db, job_id).status == JobStatus.succeeded, 90, "the job to succeed")
        topic = f"job:{job_id}"
        wait_for(lambda: "job.succeeded" in _types(db, topic), 10, "the final event in the outbox")
    finally:
        worker.kill_group()
    types = _types(db, topic)
    assert types[0] == "job.running" and types[-1] == "job.succeeded"
    assert types.count("job.progress") == 3
    with db.session() as session:
        progress = [row.data["progress"] for row in session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic, OutboxEvent.type == "job.progress"))]
    assert progress == pytest.approx([100 / 3, 200 / 3, 100])


def _types(db: Database, topic: str) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(OutboxEvent.type).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)))


@pytest.mark.anyio
async def test_the_api_relays_outbox_rows_to_subscribers_of_their_workspace(
    live_server: str, database: Database, account: Account, other_account: Account
) -> None:
    ws_url = live_server.replace("http://", "ws://", 1) + "/ws"
    write = OutboxWriter(database)
    async with authed(ws_url, account) as ws:
        await subscribe(ws, "training")
        write(Event("training", "training.completed", {"model_id": "elsewhere"}, workspace_id=other_account.workspace_id))
        marker = uuid.uuid4().hex
        write(Event("training", "training.completed", {"model_id": marker}, workspace_id=account.workspace_id))
        messages = await receive_until(ws, lambda m: m.get("data", {}).get("model_id") == marker, timeout=10)
        assert [m["data"]["model_id"] for m in messages] == [marker], "another workspace's event leaked"
        assert messages[0]["topic"] == "training" and messages[0]["type"] == "training.completed"
        await nothing_arrives(ws, 0.6)  # relayed once, not again on the next poll
