"""The jobs API against the live server and its in-process worker (2 job processes)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Account, add_member, assert_envelope, register
from vur.core.db import Database
from vur.jobs import service
from vur.settings import Settings

pytestmark = pytest.mark.anyio

FINISHED = ("succeeded", "failed", "cancelled")


def enqueue(database: Database, account: Account, type_: str = "tests.count", **payload: Any) -> str:
    with database.session() as session:
        job = service.enqueue(session, type_, payload, workspace_id=uuid.UUID(account.workspace_id), created_by=uuid.UUID(account.user_id))
        return str(job.id)


async def get_job(client: httpx.AsyncClient, account: Account, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_job(client: httpx.AsyncClient, account: Account, job_id: str, until: Any = None, timeout: float = 60) -> dict[str, Any]:
    """Polls until `until(job)` (default: the job has finished); returns the job."""
    until = until or (lambda job: job["status"] in FINISHED)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await get_job(client, account, job_id)
        if until(job):
            return job
        assert asyncio.get_running_loop().time() < deadline, f"timed out; last seen {job}"
        await asyncio.sleep(0.05)


async def cancel_and_wait(client: httpx.AsyncClient, account: Account, job_ids: list[str]) -> None:
    """Leaves the shared worker free for the next test."""
    for job_id in job_ids:
        await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=account.headers)
    for job_id in job_ids:
        await wait_job(client, account, job_id)


# --- reading jobs -----------------------------------------------------------


async def test_a_job_runs_with_rising_progress_to_its_result(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=5, delay=0.3)
    seen: list[dict[str, Any]] = []

    def record(job: dict[str, Any]) -> bool:
        seen.append(job)
        return job["status"] in FINISHED

    job = await wait_job(client, account, job_id, record)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 100
    assert job["result"] == {"steps": 5}
    assert job["error"] is None
    assert job["log"] == [f"step {i}/5" for i in range(1, 6)]
    assert job["attempts"] == 1 and job["max_attempts"] == 1 and not job["cancel_requested"]
    assert job["type"] == "tests.count" and job["payload"] == {"steps": 5, "delay": 0.3}
    assert job["worker_id"]
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]

    progress = [j["progress"] for j in seen]
    assert progress == sorted(progress), progress
    intermediate = {p for p in progress if 0 < p < 100}
    assert len(intermediate) >= 2, progress  # it was seen rising, not only jumping to the end
    statuses = [j["status"] for j in seen]
    assert "running" in statuses
    running = [j for j in seen if j["status"] == "running" and j["progress"] > 0]
    assert all(j["result"] is None and j["finished_at"] is None for j in running)
    # While it runs, the log holds exactly the steps reported so far.
    for j in running:
        steps = round(j["progress"] / 20)
        assert j["log"] == [f"step {i}/5" for i in range(1, steps + 1)]


async def test_a_job_error_does_not_show_the_server_folders(client: httpx.AsyncClient, account: Account, database: Database, settings: Settings) -> None:
    job = await wait_job(client, account, enqueue(database, account, "tests.read_missing"))
    assert job["status"] == "failed" and "<data>/artifacts/lost.parquet" in job["error"], job
    assert str(settings.data_dir) not in job["error"]


async def test_a_failing_job_records_its_error(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=5, delay=0.05, fail_at=3)
    job = await wait_job(client, account, job_id)
    assert job["status"] == "failed"
    assert job["error"] == "ValueError: failing at step 3 as asked"
    assert job["result"] is None
    assert job["progress"] == 40
    assert job["log"] == ["step 1/5", "step 2/5"]
    assert job["finished_at"] is not None


async def test_the_job_log_keeps_only_the_last_lines(client: httpx.AsyncClient, account: Account, database: Database, settings: Settings) -> None:
    keep = settings.job_log_lines
    steps = keep + 50
    job_id = enqueue(database, account, steps=steps, delay=0)
    job = await wait_job(client, account, job_id, timeout=120)
    assert job["status"] == "succeeded", job
    assert len(job["log"]) == keep
    assert job["log"][0] == f"step {steps - keep + 1}/{steps}"
    assert job["log"][-1] == f"step {steps}/{steps}"


async def test_list_jobs_filters_and_pages(client: httpx.AsyncClient, database: Database) -> None:
    account = await register(client)
    ok = [enqueue(database, account, steps=1, delay=0) for _ in range(3)]
    failed = enqueue(database, account, steps=2, delay=0, fail_at=1)
    retry_safe = enqueue(database, account, "tests.count_retry_safe", steps=1, delay=0)
    for job_id in [*ok, failed, retry_safe]:
        await wait_job(client, account, job_id)
    newest_first = [retry_safe, failed, *reversed(ok)]

    async def listing(**params: Any) -> tuple[list[str], int]:
        response = await client.get("/api/v1/jobs", headers=account.headers, params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()], int(response.headers["X-Total-Count"])

    assert await listing() == (newest_first, 5)
    assert await listing(status="succeeded") == ([retry_safe, *reversed(ok)], 4)
    assert await listing(status="failed") == ([failed], 1)
    assert await listing(status="queued") == ([], 0)
    assert await listing(type="tests.count_retry_safe") == ([retry_safe], 1)
    assert await listing(type="tests.count", status="failed") == ([failed], 1)
    assert await listing(type="no.such.type") == ([], 0)
    assert await listing(limit=2) == (newest_first[:2], 5)
    assert await listing(limit=2, offset=2) == (newest_first[2:4], 5)
    assert await listing(limit=2, offset=4) == (newest_first[4:], 5)
    assert await listing(offset=10) == ([], 5)

    for params in ({"status": "exploded"}, {"limit": 0}, {"limit": 501}, {"offset": -1}):
        body = assert_envelope(await client.get("/api/v1/jobs", headers=account.headers, params=params), 422)
        assert set(body["details"]) == set(params)

    # Another workspace sees none of them.
    other = await register(client)
    response = await client.get("/api/v1/jobs", headers=other.headers)
    assert response.json() == [] and response.headers["X-Total-Count"] == "0"


async def test_jobs_need_authentication(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=1, delay=0)
    assert_envelope(await client.get("/api/v1/jobs"), 401)
    assert_envelope(await client.get(f"/api/v1/jobs/{job_id}"), 401)
    assert_envelope(await client.post(f"/api/v1/jobs/{job_id}/cancel"), 401)
    assert_envelope(await client.get("/api/v1/jobs", headers={"Authorization": "Bearer not-a-token"}), 401)
    await wait_job(client, account, job_id)


async def test_another_workspaces_job_is_not_found(client: httpx.AsyncClient, account: Account, other_account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=20, delay=0.1)
    await wait_job(client, account, job_id, lambda j: j["status"] == "running")
    body = assert_envelope(await client.get(f"/api/v1/jobs/{job_id}", headers=other_account.headers), 404)
    assert job_id in body["error"]
    assert_envelope(await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=other_account.headers), 404)
    assert_envelope(await client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=account.headers), 404)
    assert_envelope(await client.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel", headers=account.headers), 404)
    assert_envelope(await client.get("/api/v1/jobs/not-a-uuid", headers=account.headers), 422)
    # The other workspace's cancel changed nothing.
    job = await wait_job(client, account, job_id)
    assert job["status"] == "succeeded" and not job["cancel_requested"]


# --- cancelling -------------------------------------------------------------


async def test_cancel_a_running_job_stops_it_at_its_next_progress(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=100, delay=0.1)
    await wait_job(client, account, job_id, lambda j: j["status"] == "running" and j["progress"] >= 3)
    response = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=account.headers)
    assert response.status_code == 200, response.text
    asked = response.json()
    assert asked["status"] == "running" and asked["cancel_requested"] is True
    job = await wait_job(client, account, job_id, timeout=10)
    assert job["status"] == "cancelled"
    assert job["error"] == "Cancelled by request"
    assert job["result"] is None and job["finished_at"] is not None
    # It stopped at the first progress report after the request, not at the end.
    assert job["progress"] <= asked["progress"] + 10, (asked["progress"], job["progress"])
    assert len(job["log"]) == round(job["progress"])
    await asyncio.sleep(0.5)
    assert (await get_job(client, account, job_id))["progress"] == job["progress"]

    body = assert_envelope(await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=account.headers), 409)
    assert body["details"] == {"status": "cancelled"}


async def test_cancel_a_queued_job_cancels_it_at_once(client: httpx.AsyncClient, account: Account, database: Database, settings: Settings) -> None:
    # Occupy every job process of the worker, so that the next job has to wait.
    blockers = [enqueue(database, account, steps=300, delay=0.1) for _ in range(settings.job_processes)]
    try:
        for job_id in blockers:
            await wait_job(client, account, job_id, lambda j: j["status"] == "running", timeout=60)
        waiting = enqueue(database, account, steps=1, delay=0)
        await asyncio.sleep(1.0)
        assert (await get_job(client, account, waiting))["status"] == "queued"

        response = await client.post(f"/api/v1/jobs/{waiting}/cancel", headers=account.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        assert job["status"] == "cancelled"
        assert job["error"] == "Cancelled before it started"
        assert job["started_at"] is None and job["finished_at"] is not None and job["attempts"] == 0
    finally:
        await cancel_and_wait(client, account, blockers)
    # Free slots never pick up the cancelled job.
    await asyncio.sleep(1.0)
    job = await get_job(client, account, waiting)
    assert (job["status"], job["attempts"], job["started_at"], job["log"]) == ("cancelled", 0, None, [])
    assert_envelope(await client.post(f"/api/v1/jobs/{waiting}/cancel", headers=account.headers), 409)


async def test_cancel_a_finished_job_is_a_conflict(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    succeeded = enqueue(database, account, steps=1, delay=0)
    failed = enqueue(database, account, steps=1, delay=0, fail_at=1)
    for job_id, status in ((succeeded, "succeeded"), (failed, "failed")):
        before = await wait_job(client, account, job_id)
        assert before["status"] == status
        body = assert_envelope(await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=account.headers), 409)
        assert body["details"] == {"status": status}
        after = await get_job(client, account, job_id)
        assert after == before


async def test_a_viewer_can_read_but_not_cancel(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    viewer = await add_member(client, account, "viewer")
    member = await add_member(client, account, "member")
    job_id = enqueue(database, account, steps=300, delay=0.1)
    try:
        await wait_job(client, account, job_id, lambda j: j["status"] == "running")
        assert (await client.get(f"/api/v1/jobs/{job_id}", headers=viewer.headers)).status_code == 200
        listed = await client.get("/api/v1/jobs", headers=viewer.headers)
        assert job_id in [j["id"] for j in listed.json()]
        assert_envelope(await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=viewer.headers), 403)
        job = await get_job(client, account, job_id)
        assert job["status"] == "running" and not job["cancel_requested"]
        # A member may cancel a job someone else started.
        response = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=member.headers)
        assert response.status_code == 200 and response.json()["cancel_requested"]
        assert (await wait_job(client, account, job_id, timeout=10))["status"] == "cancelled"
    finally:
        await cancel_and_wait(client, account, [job_id])
