"""Events between processes through a real Redis (a redis-server started for these tests):
a `vur serve` process with VUR_REDIS_URL delivers what other processes publish to its
WebSocket clients, scoped to their workspace, and sends its own events through Redis;
its health report says whether Redis answers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, register
from tests.core.test_websocket import authed, nothing_arrives, receive_until, subscribe
from vur.core import redis_events
from vur.core.events import Event
from vur.monitoring import service

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not come up")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = _free_port()
    directory = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for(lambda: redis_events.ping(url) >= 0, "redis-server")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def replica(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another API process, as a second replica would be: `vur serve` with Redis."""
    data_dir = tmp_path_factory.mktemp("replica")
    port = _free_port()
    env = {
        **os.environ,
        "VUR_DATA_DIR": str(data_dir),
        "VUR_DATABASE_URL": f"sqlite:///{data_dir / 'vur.db'}",
        "VUR_REDIS_URL": redis_url,
        "VUR_SECRET_KEY": "replica-secret-key-that-is-long-enough-for-hs256",
        "VUR_SYSTEM_METRICS_INTERVAL_SECONDS": "0.5",
        "VUR_ALERT_CHECK_SECONDS": "0",
    }
    command = [sys.executable, "-m", "vur.cli", "serve", "--migrate", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200, "vur serve")
        yield base
    finally:
        process.terminate()
        process.wait(20)


async def test_a_replica_delivers_events_published_elsewhere_to_its_sockets(replica: str, redis_url: str) -> None:
    async with httpx.AsyncClient(base_url=replica) as client:
        account = await register(client)
        other = await register(client)
    publisher = redis_events.RedisPublisher(redis_url)
    ws_url = replica.replace("http", "ws") + "/ws"
    async with authed(ws_url, account) as ws:
        await subscribe(ws, "predictions")
        marker = uuid.uuid4().hex
        # What a prediction made in another process publishes; then one of another workspace.
        publisher(Event("predictions", "prediction", {"marker": marker}, other.workspace_id))
        publisher(Event("predictions", "prediction", {"marker": marker, "mine": True}, account.workspace_id))
        [message] = await receive_until(ws, lambda m: m["type"] == "prediction", timeout=10)
        assert message["data"] == {"marker": marker, "mine": True}
        await nothing_arrives(ws, 0.5)


def test_a_replica_sends_its_own_events_through_redis(replica: str, redis_url: str) -> None:
    """Its system metrics (published every 0.5 s) are on the channel, for every replica."""
    pubsub = redis_events.client(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_events.CHANNEL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None and json.loads(message["data"])["type"] == "system_metrics":
                return
        raise AssertionError("no system_metrics event reached Redis")
    finally:
        pubsub.close()


async def test_the_health_report_says_whether_redis_answers(replica: str, redis_url: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=replica) as client:
        account = await register(client)
        report = (await client.get("/api/v1/monitoring/health", headers=account.headers)).json()
    assert report["components"]["redis"]["status"] == "healthy" and "PING answered" in report["components"]["redis"]["detail"]

    closed = f"redis://127.0.0.1:{_free_port()}/0"
    down = service.check_redis(make_settings("sqlite://", tmp_path, redis_url=closed))
    assert down.status == "degraded" and "ConnectionError" in down.detail
    assert service.check_redis(make_settings("sqlite://", tmp_path)).status == "not_configured"
