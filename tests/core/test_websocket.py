"""The WebSocket hub at /ws, over a real socket to the live server: authentication,
subscriptions scoped to the caller's workspace, job and training events, and a
protocol that answers bad messages instead of dropping the connection."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Account, hourly_csv, register
from vur.core import hub, security
from vur.core.db import Database
from vur.jobs import service
from vur.settings import Settings

pytestmark = pytest.mark.anyio

POLICY_VIOLATION = 1008


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """Errors the server logs (an exception escaping the WebSocket endpoint lands here)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn", "vur.errors")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


def open_socket(url: str) -> Any:
    return connect(url, proxy=None, open_timeout=10, close_timeout=5)


async def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = 30) -> list[dict[str, Any]]:
    """Every message up to and including the first for which `done` is true."""
    messages: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"timed out; received {messages}"
        messages.append(await receive(ws, remaining))
        if done(messages[-1]):
            return messages


async def nothing_arrives(ws: ClientConnection, seconds: float) -> None:
    try:
        message = await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message: {message}")


@asynccontextmanager
async def authed(ws_url: str, account: Account) -> AsyncIterator[ClientConnection]:
    async with open_socket(f"{ws_url}?token={account.access_token}") as ws:
        welcome = await receive(ws)
        assert welcome["type"] == "welcome", welcome
        yield ws


async def subscribe(ws: ClientConnection, *topics: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "topics": list(topics)}))
    reply = await receive(ws)
    assert reply["type"] == "subscribed", reply
    return reply["data"]


async def closed_with(ws: ClientConnection, timeout: float = 10) -> int | None:
    """Waits for the server to close the socket; returns the close code. Fails if any
    message (a welcome!) arrives first."""
    with pytest.raises(ConnectionClosed) as closed:
        message = await asyncio.wait_for(ws.recv(), timeout)
        raise AssertionError(f"expected the socket to close, received {message}")
    return closed.value.rcvd.code if closed.value.rcvd else None


def enqueue(database: Database, account: Account, **payload: Any) -> str:
    with database.session() as session:
        return str(service.enqueue(session, "tests.count", payload, workspace_id=uuid.UUID(account.workspace_id)).id)


# --- authentication ---------------------------------------------------------


async def test_token_in_the_query_string_is_welcomed(ws_url: str, account: Account) -> None:
    async with open_socket(f"{ws_url}?token={account.access_token}") as ws:
        welcome = await receive(ws)
        assert welcome == {"type": "welcome", "data": {"user_id": account.user_id, "workspace_id": account.workspace_id}}


async def test_token_in_the_first_message_is_welcomed(ws_url: str, account: Account) -> None:
    async with open_socket(ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": account.access_token}))
        welcome = await receive(ws)
        assert welcome == {"type": "welcome", "data": {"user_id": account.user_id, "workspace_id": account.workspace_id}}
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws))["type"] == "pong"


def _tokens(settings: Settings, account: Account) -> dict[str, str]:
    user_id = uuid.UUID(account.user_id)
    secret = settings.resolved_secret_key()
    return {
        "garbage": "not-a-token",
        "expired": security.create_access_token(secret, user_id, minutes=-1),
        "wrong secret": security.create_access_token("another-secret-that-is-long-enough-for-hs256", user_id, minutes=15),
        "unknown user": security.create_access_token(secret, uuid.uuid4(), minutes=15),
        "refresh token": account.refresh_token,
        "not an access token": security.create_access_token(secret, user_id, minutes=15, claims={"typ": "refresh"}),
    }


@pytest.mark.parametrize("kind", ["garbage", "expired", "wrong secret", "unknown user", "refresh token", "not an access token"])
async def test_a_bad_token_is_closed_with_1008(ws_url: str, account: Account, settings: Settings, kind: str) -> None:
    token = _tokens(settings, account)[kind]
    async with open_socket(f"{ws_url}?token={token}") as ws:
        assert await closed_with(ws) == POLICY_VIOLATION
    async with open_socket(ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert await closed_with(ws) == POLICY_VIOLATION


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"type": "ping"}),
        json.dumps({"type": "subscribe", "topics": ["training"]}),
        json.dumps({"type": "auth"}),
        json.dumps({"type": "auth", "token": 12345}),
        json.dumps({"type": "auth", "token": ""}),
        json.dumps(["auth", "token"]),
        "not json at all",
        b"\x00binary",
    ],
)
async def test_a_first_message_without_a_token_is_closed_with_1008(ws_url: str, first: str | bytes) -> None:
    async with open_socket(ws_url) as ws:
        await ws.send(first)
        assert await closed_with(ws) == POLICY_VIOLATION


async def test_no_token_at_all_is_closed_with_1008_after_the_auth_timeout(ws_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "AUTH_TIMEOUT", 0.5)
    async with open_socket(ws_url) as ws:
        assert await closed_with(ws, timeout=5) == POLICY_VIOLATION
    async with open_socket(f"{ws_url}?token=") as ws:
        assert await closed_with(ws, timeout=5) == POLICY_VIOLATION


async def test_a_client_leaving_before_it_authenticates_is_no_server_error(ws_url: str, account: Account, server_errors: list[logging.LogRecord]) -> None:
    async with open_socket(ws_url) as ws:
        await ws.close()
    async with open_socket(f"{ws_url}?token={account.access_token}") as ws:
        await receive(ws)
        await ws.close()
    await asyncio.sleep(0.5)
    assert [r.getMessage() for r in server_errors] == []


# --- the protocol -----------------------------------------------------------


async def test_ping_and_malformed_messages_keep_the_socket_open(ws_url: str, account: Account, server_errors: list[logging.LogRecord]) -> None:
    async with authed(ws_url, account) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive(ws) == {"type": "pong", "data": {}}
        malformed: list[str | bytes] = [
            "not json",
            "{",
            "null",
            "42",
            '"ping"',
            "[1, 2]",
            json.dumps({"no": "type"}),
            json.dumps({"type": "dance"}),
            json.dumps({"type": ["ping"]}),
            json.dumps({"type": "subscribe"}),
            json.dumps({"type": "subscribe", "topics": "training"}),
            json.dumps({"type": "subscribe", "topics": [1, 2]}),
            json.dumps({"type": "subscribe", "topics": ["x" * 201]}),
            json.dumps({"type": "subscribe", "topics": [f"job:{uuid.uuid4()}" for _ in range(101)]}),
            json.dumps({"type": "unsubscribe", "topics": None}),
            json.dumps({"type": "auth", "token": account.access_token}),
            b'{"type": "ping"}',
            b"\xff\xfe",
            "[" * 10_000 + "]" * 10_000,
        ]
        for message in malformed:
            await ws.send(message)
            reply = await receive(ws)
            assert reply["type"] == "error", (message, reply)
            assert isinstance(reply["data"]["message"], str) and reply["data"]["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws))["type"] == "pong"
    assert [r.getMessage() for r in server_errors] == []


async def test_subscribe_answers_what_was_accepted_and_rejected(ws_url: str, account: Account, other_account: Account, database: Database) -> None:
    mine = enqueue(database, account, steps=1, delay=0)
    theirs = enqueue(database, other_account, steps=1, delay=0)
    async with authed(ws_url, account) as ws:
        topics = ["training", f"job:{mine}", f"job:{theirs}", f"job:{uuid.uuid4()}", "job:not-a-uuid", "job:", "dataset:" + mine, "nonsense", ""]
        reply = await subscribe(ws, *topics)
        assert reply["topics"] == ["training", f"job:{mine}"]
        assert reply["rejected"] == topics[2:]
        await ws.send(json.dumps({"type": "unsubscribe", "topics": ["training"]}))
        # `mine` runs meanwhile: its events may come first, and only its events.
        messages = await receive_until(ws, lambda m: m["type"] == "unsubscribed")
        assert messages[-1] == {"type": "unsubscribed", "data": {"topics": ["training"]}}
        assert {m.get("topic") for m in messages[:-1]} <= {f"job:{mine}"}


# --- events -----------------------------------------------------------------


def is_final(message: dict[str, Any]) -> bool:
    return message["type"] in ("job.succeeded", "job.failed", "job.cancelled")


async def test_job_events_arrive_as_the_job_runs(ws_url: str, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=6, delay=0.5)
    async with authed(ws_url, account) as ws:
        assert (await subscribe(ws, f"job:{job_id}"))["topics"] == [f"job:{job_id}"]
        messages = await receive_until(ws, is_final, timeout=60)
    assert all(m["topic"] == f"job:{job_id}" and m["data"]["job_id"] == job_id for m in messages)
    progress = [m for m in messages if m["type"] == "job.progress"]
    assert len(progress) >= 4, messages
    values = [m["data"]["progress"] for m in progress]
    assert values == sorted(values) and values[-1] == 100
    assert progress[-1]["data"]["message"] == "step 6/6"
    assert all(m["data"]["status"] == "running" for m in progress)
    final = messages[-1]
    assert final["type"] == "job.succeeded"
    assert final["data"]["status"] == "succeeded" and final["data"]["result"] == {"steps": 6} and final["data"]["progress"] == 100


async def test_a_topic_is_matched_whatever_the_case_of_its_id(ws_url: str, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=3, delay=0.3)
    async with authed(ws_url, account) as ws:
        reply = await subscribe(ws, f"job:{job_id.upper()}")
        assert reply["rejected"] == []
        messages = await receive_until(ws, is_final, timeout=60)
    assert messages[-1]["type"] == "job.succeeded"


async def test_unsubscribe_stops_the_events(ws_url: str, account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=20, delay=0.1)
    async with authed(ws_url, account) as ws:
        await subscribe(ws, f"job:{job_id}")
        await receive_until(ws, lambda m: m["type"] == "job.progress", timeout=30)
        await ws.send(json.dumps({"type": "unsubscribe", "topics": [f"job:{job_id}"]}))
        # Events already on their way may still arrive before the acknowledgement.
        await receive_until(ws, lambda m: m["type"] == "unsubscribed", timeout=10)
        await nothing_arrives(ws, 3.0)


async def test_another_workspaces_job_cannot_be_followed(ws_url: str, account: Account, other_account: Account, database: Database) -> None:
    job_id = enqueue(database, account, steps=5, delay=0.3)
    async with authed(ws_url, account) as owner:
        async with authed(ws_url, other_account) as intruder:
            reply = await subscribe(intruder, f"job:{job_id}")
            assert reply == {"topics": [], "rejected": [f"job:{job_id}"]}
            await subscribe(owner, f"job:{job_id}")
            messages = await receive_until(owner, is_final, timeout=60)
            assert any(m["type"] == "job.progress" for m in messages)
            # The intruder's queue saw every one of those events, and sent none of them.
            await intruder.send(json.dumps({"type": "ping"}))
            assert (await receive(intruder))["type"] == "pong"
            await nothing_arrives(intruder, 0.5)


async def test_training_completed_reaches_the_training_topic_of_its_workspace_only(
    ws_url: str, client: httpx.AsyncClient, account: Account, tmp_path: Path
) -> None:
    stranger = await register(client)
    csv_path = hourly_csv(tmp_path / "hourly.csv")
    with csv_path.open("rb") as handle:
        upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("hourly.csv", handle, "text/csv")})
    assert upload.status_code == 201, upload.text
    async with authed(ws_url, account) as ws:
        async with authed(ws_url, stranger) as other:
            await subscribe(ws, "training")
            await subscribe(other, "training")
            train = await client.post(
                "/api/v1/models/train",
                headers=account.headers,
                json={"dataset_id": upload.json()["dataset_id"], "algorithm": "seasonal_naive", "hyperparameters": {"season_length": 24}, "horizon": 24},
            )
            assert train.status_code == 202, train.text
            model_id = train.json()["model_id"]
            messages = await receive_until(ws, lambda m: m["type"] in ("training.completed", "training.failed"), timeout=240)
            completed = messages[-1]
            assert completed["type"] == "training.completed", messages
            assert completed["topic"] == "training"
            assert completed["data"]["model_id"] == model_id
            assert completed["data"]["metrics"]["mae"] == pytest.approx(0.24, abs=1e-6)
            assert messages[0]["type"] == "training.queued" and messages[0]["data"]["model_id"] == model_id
            await other.send(json.dumps({"type": "ping"}))
            assert (await receive(other))["type"] == "pong"
            await nothing_arrives(other, 0.5)


async def test_trials_and_epochs_stream_on_the_training_topic(ws_url: str, client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    csv_path = hourly_csv(tmp_path / "hourly.csv", hours=24 * 10)
    with csv_path.open("rb") as handle:
        upload = await client.post("/api/v1/datasets/upload", headers=account.headers, files={"file": ("hourly.csv", handle, "text/csv")})
    body = {
        "dataset_id": upload.json()["dataset_id"],
        "algorithm": "mlp",
        "hyperparameters": {"epochs": 3, "patience": 10, "units": 8, "input_size": 24},
        "horizon": 12,
        "validation": {"method": "holdout"},
        "optimization": {"enabled": True, "method": "grid", "iterations": 2, "search_space": {"units": {"type": "int", "choices": [4, 8]}}},
    }
    async with authed(ws_url, account) as ws:
        await subscribe(ws, "training")
        train = await client.post("/api/v1/models/train", headers=account.headers, json=body)
        assert train.status_code == 202, train.text
        messages = await receive_until(ws, lambda m: m["type"] in ("training.completed", "training.failed"), timeout=240)
    assert messages[-1]["type"] == "training.completed", messages
    trials = [m["data"] for m in messages if m["type"] == "training.trial"]
    assert [(t["trial"], t["trials"]) for t in trials] == [(1, 2), (2, 2)]
    assert sorted(t["params"]["units"] for t in trials) == [4, 8]
    # The best so far counts the trial being reported: the first one is its own best.
    assert trials[0]["best_value"] == trials[0]["value"] is not None
    assert trials[1]["best_value"] == min(t["value"] for t in trials)
    epochs = [m["data"] for m in messages if m["type"] == "training.epoch"]
    # The final fit's epochs, in order, each with its loss.
    assert [(e["epoch"], e["epochs"]) for e in epochs] == [(1, 3), (2, 3), (3, 3)]
    assert all("loss" in e["metrics"] for e in epochs)
