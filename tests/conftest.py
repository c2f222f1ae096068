"""Test fixtures: one migrated database and one live VUR server per test session.

The database is SQLite by default and PostgreSQL when VUR_TEST_POSTGRES_URL points at
a server (a fresh database is created for the session and dropped at the end). Tests
talk to the real app over HTTP with an async client; each test registers its own
users, so every test works in workspaces of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.forge.provider_server import ProviderServer
from vur.app import create_app
from vur.core import migrations
from vur.core.db import Database, get_database
from vur.settings import Settings

TEST_JOB_MODULES = ["tests.jobs.sample_jobs"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_database(directory: Path) -> Iterator[str]:
    """An empty database of its own: an SQLite file in `directory`, or, when
    VUR_TEST_POSTGRES_URL is set, a new PostgreSQL database dropped afterwards."""
    admin_url = os.environ.get("VUR_TEST_POSTGRES_URL")
    if not admin_url:
        url = f"sqlite:///{directory / f'vur-{uuid.uuid4().hex[:8]}.db'}"
        try:
            yield url
        finally:
            get_database(url).dispose()
        return
    name = f"vur_test_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        get_database(url).dispose()
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Engine, name: str) -> None:
    """FORCE ends our own leftover sessions, but a test role may not end an autovacuum
    worker that happens to be in the fresh database: wait for it and try again."""
    for attempt in range(20):
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 19:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty, un-migrated database for one test."""
    with scratch_database(tmp_path) as url:
        yield url


def make_settings(url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test server or worker: quick heartbeats, the test job types."""
    values: dict[str, object] = dict(
        environment="test",
        data_dir=data_dir,
        database_url=url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        log_level="WARNING",
        job_processes=1,
        job_heartbeat_seconds=0.5,
        job_stale_after_seconds=3,
        job_modules=TEST_JOB_MODULES,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def provider_server() -> Iterator[ProviderServer]:
    """The LLM provider every forge test talks to (scripted per model name)."""
    with ProviderServer() as server:
        yield server


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str, provider_server: ProviderServer) -> Settings:
    return make_settings(
        database_url,
        tmp_path_factory.mktemp("data"),
        job_runner="inprocess",
        job_processes=2,
        max_body_bytes=64 * 1024,
        max_upload_bytes=2 * 1024 * 1024,
        login_max_failures_per_account=5,
        login_max_failures_per_client=1000,
        system_metrics_interval_seconds=1.0,
        # Tests run the alert evaluator themselves, at the moment (and the clock) they choose.
        alert_check_seconds=0,
        # Webhooks go to receivers the tests start on 127.0.0.1, and retry (and time out) quickly.
        webhook_allow_private_targets=True,
        forge_compatible_allowed_hosts=["127.0.0.1"],
        webhook_poll_seconds=0.2,
        webhook_retry_base_seconds=0.2,
        webhook_timeout_seconds=1.0,
        # The forge's providers are the local provider server; calls time out and retry quickly.
        forge_openai_base_url=provider_server.base_url,
        forge_together_base_url=provider_server.base_url,
        forge_gemini_base_url=provider_server.base_url,
        forge_openai_api_key="sk-test-settings-key",
        forge_provider_timeout_seconds=1.0,
        forge_provider_max_retries=2,
        forge_provider_backoff_seconds=0.05,
        # Tests advance fine-tuning jobs themselves (tests/forge/test_training_jobs.py), against
        # a fine-tuning server of their own.
        forge_finetune_poll_seconds=0,
    )


@pytest.fixture(scope="session")
def database(settings: Settings) -> Database:
    migrations.upgrade(settings.resolved_database_url)
    return get_database(settings.resolved_database_url)


@pytest.fixture(scope="session")
def live_server(settings: Settings, database: Database) -> Iterator[str]:
    """A real uvicorn serving the app on a free port, for HTTP and WebSocket tests."""
    port = _free_port()
    app = create_app(settings)
    # A WebSocket left open must not hold the shutdown (and so the job runner) forever.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("the test server did not start")
    yield base
    server.should_exit = True
    thread.join(30)
    if app.state.worker is not None:  # the lifespan's shutdown did not get to it in time
        app.state.worker.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No job process may outlive the tests. A pool whose process still runs a job
    keeps its manager thread alive, and the interpreter waits on that thread at exit:
    the run would print its result and then never end."""
    for process in multiprocessing.active_children():
        process.kill()
        process.join(10)


@pytest.fixture
def ws_url(live_server: str) -> str:
    return live_server.replace("http://", "ws://", 1) + "/ws"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        yield http


@dataclass
class Account:
    email: str
    password: str
    user_id: str
    workspace_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(client: httpx.AsyncClient, **overrides: str) -> Account:
    body = {"email": f"user-{uuid.uuid4().hex[:12]}@example.com", "password": "correct-horse-battery", "name": "Test User", **overrides}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Account(body["email"], body["password"], data["user"]["id"], data["user"]["workspace"]["id"], data["access_token"], data["refresh_token"])


async def add_member(client: httpx.AsyncClient, admin: Account, role: str) -> Account:
    """A second account in `admin`'s workspace, with the given role."""
    email, password = f"member-{uuid.uuid4().hex[:12]}@example.com", "member-password-1"
    response = await client.post("/api/v1/workspace/members", headers=admin.headers, json={"email": email, "name": "Member", "password": password, "role": role})
    assert response.status_code == 201, response.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    data = login.json()
    return Account(email, password, data["user"]["id"], data["user"]["workspace"]["id"], data["access_token"], data["refresh_token"])


@pytest.fixture
async def account(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def other_account(client: httpx.AsyncClient) -> Account:
    return await register(client)


def assert_envelope(response: httpx.Response, status: int) -> dict:
    """Every error answers {"error", "details", "request_id"} with the given status."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    assert set(body) == {"error", "details", "request_id"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def hourly_csv(path: Path, hours: int = 24 * 21, series: list[str] | None = None) -> Path:
    """A small hourly CSV with a daily cycle: date,value (or date,series,value)."""
    import math
    from datetime import datetime, timedelta

    start = datetime(2026, 1, 1)
    lines = ["date,series,value" if series else "date,value"]
    for name in series or [None]:
        for i in range(hours):
            value = round(100 + 10 * math.sin(2 * math.pi * i / 24) + 0.01 * i, 4)
            stamp = (start + timedelta(hours=i)).isoformat()
            lines.append(f"{stamp},{name},{value}" if name else f"{stamp},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


async def wait_until(check: Callable[[], Awaitable[object]], timeout: float = 20) -> None:
    """Poll `check` until it answers something true; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def wait_for_job(client: httpx.AsyncClient, account: Account, job_id: str, timeout: float = 120) -> dict:
    """The job, once it has ended (succeeded, failed or cancelled)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.2)
