"""Outgoing webhooks over HTTP: subscriptions per workspace, signed deliveries to a real
local receiver, retries with backoff and Retry-After, failure after the last attempt,
redelivery, pings, refused targets, refused input, and claims that never overlap."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, add_member, assert_envelope, make_settings, scratch_database
from tests.webhooks.receiver import Answer, Receiver
from vur.app import create_app
from vur.core import migrations
from vur.core.db import Database, get_database, utcnow
from vur.core.outbound import Target, checked_target, request_parts
from vur.core.security import decrypt_secret, encrypt_secret
from vur.identity.models import Workspace
from vur.settings import Settings
from vur.webhooks import service
from vur.webhooks.dispatcher import Claimed, Outcome, claim, finish, send
from vur.webhooks.exceptions import InvalidTarget
from vur.webhooks.models import Webhook, WebhookDelivery
from vur.webhooks.signing import sign, verify

pytestmark = pytest.mark.anyio

SECRET = "a-receiver-secret-of-ours"
MACHINE_PAYLOAD = {"model_id": str(uuid.uuid4()), "machine_id": str(uuid.uuid4()), "status": "completed", "metrics": {"r2": 0.91, "rmse": 1.7}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def create(client: httpx.AsyncClient, account: Account, url: str, **body: object) -> dict:
    response = await client.post("/api/v1/webhooks", headers=account.headers, json={"url": url, "events": ["training.completed"], **body})
    assert response.status_code == 201, response.text
    return response.json()


async def count(client: httpx.AsyncClient, account: Account) -> int:
    response = await client.get("/api/v1/webhooks", headers=account.headers)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


async def ping(client: httpx.AsyncClient, account: Account, webhook_id: str) -> dict:
    response = await client.post(f"/api/v1/webhooks/{webhook_id}/test", headers=account.headers)
    assert response.status_code == 202, response.text
    return response.json()


async def wait_for(client: httpx.AsyncClient, account: Account, delivery_id: str, status: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        delivery = (await client.get(f"/api/v1/webhooks/deliveries/{delivery_id}", headers=account.headers)).json()
        if delivery["status"] == status:
            return delivery
        assert asyncio.get_running_loop().time() < deadline, delivery
        await asyncio.sleep(0.1)


def gaps(receiver: Receiver) -> list[float]:
    times = [request.at for request in receiver.requests]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


# --- subscriptions ---------------------------------------------------------------------


async def test_crud_and_the_secret_is_shown_once(client: httpx.AsyncClient, account: Account, other_account: Account) -> None:
    created = await create(client, account, "https://hooks.example.com/a", description="plant dashboard", events=["training.completed", "training.failed", "training.completed"])
    assert created["events"] == ["training.completed", "training.failed"] and created["active"] is True
    assert len(created["secret"]) >= 32
    chosen = await create(client, account, "https://hooks.example.com/b", secret=SECRET)
    assert chosen["secret"] == SECRET

    webhook_id = created["id"]
    one = await client.get(f"/api/v1/webhooks/{webhook_id}", headers=account.headers)
    listed = await client.get("/api/v1/webhooks", headers=account.headers, params={"limit": 1})
    assert listed.headers["X-Total-Count"] == "2" and len(listed.json()) == 1
    for shown in (one.text, listed.text):
        assert "secret" not in shown and created["secret"] not in shown and SECRET not in shown

    update = {"url": "https://hooks.example.com/c", "events": ["training.failed"], "active": False, "description": None}
    updated = await client.put(f"/api/v1/webhooks/{webhook_id}", headers=account.headers, json=update)
    assert updated.status_code == 200, updated.text
    assert {k: updated.json()[k] for k in update} == update and "secret" not in updated.json()

    assert (await client.get("/api/v1/webhooks", headers=other_account.headers)).json() == []
    assert_envelope(await client.get(f"/api/v1/webhooks/{webhook_id}", headers=other_account.headers), 404)
    assert (await client.delete(f"/api/v1/webhooks/{webhook_id}", headers=account.headers)).status_code == 204
    assert_envelope(await client.get(f"/api/v1/webhooks/{webhook_id}", headers=account.headers), 404)
    assert await count(client, account) == 1


async def test_a_viewer_reads_but_cannot_write(client: httpx.AsyncClient, account: Account) -> None:
    webhook = await create(client, account, "https://hooks.example.com/v")
    viewer = await add_member(client, account, "viewer")
    assert (await client.get(f"/api/v1/webhooks/{webhook['id']}", headers=viewer.headers)).status_code == 200
    assert_envelope(await client.post("/api/v1/webhooks", headers=viewer.headers, json={"url": "https://hooks.example.com/x", "events": ["training.failed"]}), 403)
    assert_envelope(await client.post(f"/api/v1/webhooks/{webhook['id']}/test", headers=viewer.headers), 403)
    assert_envelope(await client.delete(f"/api/v1/webhooks/{webhook['id']}", headers=viewer.headers), 403)


# --- deliveries --------------------------------------------------------------------------


async def test_ping_is_signed_with_the_secret_from_creation(client: httpx.AsyncClient, account: Account, receiver: Receiver) -> None:
    webhook = await create(client, account, receiver.url, events=["training.failed"])
    queued = await ping(client, account, webhook["id"])
    assert queued["event"] == "ping" and queued["status"] in ("pending", "sending") and queued["webhook_id"] == webhook["id"]

    delivered = await wait_for(client, account, queued["id"], "delivered")
    assert delivered["delivered_at"] and delivered["next_attempt_at"] is None
    [attempt] = delivered["attempts"]
    assert attempt["number"] == 1 and attempt["status_code"] == 200 and attempt["error"] is None and attempt["response_body"] == "ok"

    [request] = receiver.requests
    headers, body = request.headers, request.body
    assert headers["content-type"] == "application/json"
    assert headers["x-vur-event"] == "ping" and headers["x-vur-delivery"] == queued["id"]
    assert headers["x-vur-signature"].startswith("sha256=")
    assert verify(webhook["secret"], headers["x-vur-timestamp"], headers["x-vur-signature"], body)
    assert not verify("some-other-secret-entirely", headers["x-vur-timestamp"], headers["x-vur-signature"], body)
    assert not verify(webhook["secret"], headers["x-vur-timestamp"], headers["x-vur-signature"], body.replace(b"ping", b"pong"))
    sent = json.loads(body)
    assert sent == {"event": "ping", "delivery_id": queued["id"], "created_at": sent["created_at"], "webhook_id": webhook["id"], "events": ["training.failed"]}
    assert datetime.fromisoformat(sent["created_at"]).utcoffset() == timedelta(0)


async def test_emit_reaches_the_active_listeners_of_the_workspace_only(
    client: httpx.AsyncClient, account: Account, other_account: Account, database: Database, settings: Settings, receiver: Receiver
) -> None:
    listening = await create(client, account, receiver.url, secret=SECRET)
    await create(client, account, receiver.url, events=["training.failed"])
    paused = await create(client, account, receiver.url)
    await client.put(f"/api/v1/webhooks/{paused['id']}", headers=account.headers, json={"active": False})
    await create(client, other_account, receiver.url)

    with database.session() as session:
        deliveries = service.emit(session, uuid.UUID(account.workspace_id), "training.completed", MACHINE_PAYLOAD)
        assert [str(d.webhook_id) for d in deliveries] == [listening["id"]]
        delivery_id = str(deliveries[0].id)
        with pytest.raises(ValueError, match="unknown webhook event"):
            service.emit(session, uuid.UUID(account.workspace_id), "training.exploded", {})

        stored = session.get(Webhook, uuid.UUID(listening["id"]))
        assert stored is not None and SECRET not in stored.secret_encrypted
        assert decrypt_secret(settings.resolved_secret_key(), stored.secret_encrypted) == SECRET

    delivered = await wait_for(client, account, delivery_id, "delivered")
    assert delivered["payload"] == MACHINE_PAYLOAD and delivered["event"] == "training.completed"
    await asyncio.sleep(0.5)  # time for anything sent by mistake to arrive
    [request] = receiver.requests
    assert json.loads(request.body) == {"event": "training.completed", "delivery_id": delivery_id, "created_at": json.loads(request.body)["created_at"], **MACHINE_PAYLOAD}
    assert verify(SECRET, request.headers["x-vur-timestamp"], request.headers["x-vur-signature"], request.body)

    listed = await client.get(f"/api/v1/webhooks/{listening['id']}/deliveries", headers=account.headers, params={"status": "delivered"})
    assert listed.headers["X-Total-Count"] == "1" and listed.json()[0]["id"] == delivery_id
    assert (await client.get(f"/api/v1/webhooks/{listening['id']}/deliveries", headers=account.headers, params={"status": "failed"})).json() == []
    assert_envelope(await client.get(f"/api/v1/webhooks/deliveries/{delivery_id}", headers=other_account.headers), 404)


async def test_retries_back_off_honour_retry_after_and_give_up_on_a_hang(client: httpx.AsyncClient, account: Account, receiver: Receiver, settings: Settings) -> None:
    receiver.script(
        Answer(500, body=b"x" * 2000),
        Answer(429, headers={"Retry-After": "1"}, body=b"slow down"),
        Answer(200, hang=3 * settings.webhook_timeout_seconds),
        Answer(204, body=b""),
    )
    webhook = await create(client, account, receiver.url)
    delivered = await wait_for(client, account, (await ping(client, account, webhook["id"]))["id"], "delivered")

    attempts = delivered["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status_code"] for a in attempts] == [500, 429, None, 204]
    assert attempts[0]["response_body"] == "x" * 500 and attempts[1]["response_body"] == "slow down"
    assert "timed out" in attempts[2]["error"] and attempts[2]["duration_ms"] >= 900
    base = settings.webhook_retry_base_seconds
    first, after_429, after_hang = gaps(receiver)
    assert first >= base * 0.95
    assert after_429 >= 1.0 * 0.95, "Retry-After: 1 is longer than the backoff (2 × base) and wins"
    assert after_hang >= settings.webhook_timeout_seconds + 4 * base * 0.95


async def test_failed_after_the_last_attempt_then_redelivered(client: httpx.AsyncClient, account: Account, receiver: Receiver, settings: Settings) -> None:
    receiver.script(Answer(500, body=b"down"))
    webhook = await create(client, account, receiver.url)
    delivery_id = (await ping(client, account, webhook["id"]))["id"]
    # Queued or being sent: not yet something to send again.
    assert assert_envelope(await client.post(f"/api/v1/webhooks/deliveries/{delivery_id}/redeliver", headers=account.headers), 409)["details"]["status"] in ("pending", "sending")

    failed = await wait_for(client, account, delivery_id, "failed", timeout=60)
    tries = settings.webhook_max_attempts
    assert [a["number"] for a in failed["attempts"]] == list(range(1, tries + 1))
    assert {a["status_code"] for a in failed["attempts"]} == {500} and failed["next_attempt_at"] is None
    for index, gap in enumerate(gaps(receiver)):
        assert gap >= settings.webhook_retry_base_seconds * 2**index * 0.95, gaps(receiver)
    listed = await client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries", headers=account.headers, params={"status": "failed"})
    assert [d["id"] for d in listed.json()] == [delivery_id]

    receiver.script(Answer(200))
    again = await client.post(f"/api/v1/webhooks/deliveries/{delivery_id}/redeliver", headers=account.headers)
    assert again.status_code == 202 and again.json()["status"] == "pending", again.text
    delivered = await wait_for(client, account, delivery_id, "delivered")
    assert [a["number"] for a in delivered["attempts"]] == list(range(1, tries + 2))
    assert delivered["attempts"][-1]["status_code"] == 200
    assert len(receiver.requests) == tries + 1
    # Every attempt carried the same delivery, each signed afresh.
    assert {r.headers["x-vur-delivery"] for r in receiver.requests} == {delivery_id}


# --- refused targets ---------------------------------------------------------------------


@pytest.fixture
async def strict_client(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The same database and keys as the live server, with private targets refused (the default)."""
    strict = create_app(make_settings(settings.resolved_database_url, tmp_path, max_body_bytes=settings.max_body_bytes, webhook_allow_private_targets=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=strict), base_url="http://strict") as http:
        yield http


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://127.1/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("https://10.0.0.1/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://[fd12:3456::1]/hook", "private"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://100.64.0.1/hook", "not a public address"),
    ],
)
async def test_private_targets_are_refused_by_default(strict_client: httpx.AsyncClient, account: Account, url: str, reason: str) -> None:
    details = assert_envelope(await strict_client.post("/api/v1/webhooks", headers=account.headers, json={"url": url, "events": ["training.completed"]}), 422)["details"]
    assert reason in details["url"], details
    assert await count(strict_client, account) == 0


async def test_a_changed_url_is_checked_too(strict_client: httpx.AsyncClient, account: Account) -> None:
    webhook = await create(strict_client, account, "https://93.184.216.34/hook")  # a public literal: nothing to resolve
    refused = await strict_client.put(f"/api/v1/webhooks/{webhook['id']}", headers=account.headers, json={"url": "http://10.1.2.3/"})
    assert "private" in assert_envelope(refused, 422)["details"]["url"]
    assert (await strict_client.get(f"/api/v1/webhooks/{webhook['id']}", headers=account.headers)).json()["url"] == "https://93.184.216.34/hook"


def test_the_setting_allows_private_targets(settings: Settings, tmp_path: Path) -> None:
    strict = make_settings(settings.resolved_database_url, tmp_path, webhook_allow_private_targets=False)
    with pytest.raises(InvalidTarget) as refused:
        service.check_target(strict, "http://127.0.0.1:9/hook")
    assert "loopback" in refused.value.details["url"]
    service.check_target(settings, "http://127.0.0.1:9/hook")  # the test server's setting: allowed
    target = checked_target("https://93.184.216.34:8443/x", allow_private=False)
    assert str(target.address) == "93.184.216.34"


def test_the_target_is_checked_again_at_delivery(settings: Settings, tmp_path: Path, receiver: Receiver) -> None:
    """A webhook registered while its host was public (or the setting allowed it) is not sent
    to a private address later: the dispatcher checks before each attempt (DNS rebinding)."""
    strict = make_settings(settings.resolved_database_url, tmp_path, webhook_allow_private_targets=False)
    delivery = Claimed(uuid.uuid4(), 1, 0, "ping", {}, utcnow(), receiver.url, encrypt_secret(strict.resolved_secret_key(), SECRET))
    with httpx.Client() as http:
        outcome = send(http, strict, delivery)
        assert outcome.status_code is None and "loopback" in outcome.error
        assert receiver.requests == []
        assert send(http, settings, delivery).status_code == 200
    assert len(receiver.requests) == 1


def test_a_named_host_is_reached_at_the_checked_address() -> None:
    """The request goes to the address that passed the check, not to a second lookup; the
    receiver still sees its name (Host) and TLS still verifies it (SNI)."""
    target = Target(httpx.URL("https://hooks.example.com:8443/vur?x=1"), ipaddress.ip_address("93.184.216.34"))
    assert request_parts(target) == (httpx.URL("https://93.184.216.34:8443/vur?x=1"), {"Host": "hooks.example.com:8443"}, {"sni_hostname": "hooks.example.com"})
    literal = Target(httpx.URL("http://93.184.216.34/vur"), ipaddress.ip_address("93.184.216.34"))
    assert request_parts(literal) == (literal.url, {}, {})


# --- refused input -----------------------------------------------------------------------

VALID = {"url": "https://hooks.example.com/vur", "events": ["training.completed"]}


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b'{"url": "https://hooks.example.com", "events": [', 400, "body"),
        (b"[]", 422, "body"),
        ({**VALID, "url": 5}, 422, "url"),
        ({**VALID, "events": "training.completed"}, 422, "events"),
        ({**VALID, "events": ["training.exploded"]}, 422, "events"),
        ({**VALID, "events": ["ping"]}, 422, "events"),
        ({**VALID, "events": []}, 422, "events"),
        ({"url": VALID["url"]}, 422, "events"),
        ({**VALID, "url": "ftp://hooks.example.com/vur"}, 422, "url"),
        ({**VALID, "url": "javascript:alert(1)"}, 422, "url"),
        ({**VALID, "url": "hooks.example.com/vur"}, 422, "url"),
        ({**VALID, "url": "https://user:pass@hooks.example.com/vur"}, 422, "url"),
        ({**VALID, "url": "https://hooks.example.com/" + "a" * 2000}, 422, "url"),
        ({**VALID, "secret": "short"}, 422, "secret"),
        ({**VALID, "active": False}, 422, "active"),
        ({**VALID, "description": "d" * 70_000}, 413, None),
    ],
)
async def test_bad_bodies_are_refused_and_write_nothing(client: httpx.AsyncClient, account: Account, body: object, status: int, field: str | None) -> None:
    if isinstance(body, bytes):
        response = await client.post("/api/v1/webhooks", headers={**account.headers, "Content-Type": "application/json"}, content=body)
    else:
        response = await client.post("/api/v1/webhooks", headers=account.headers, json=body)
    details = assert_envelope(response, status)["details"]
    if field is not None:
        assert any(key.startswith(field) for key in details), details
    assert await count(client, account) == 0


@pytest.mark.parametrize(
    "body, field",
    [({"events": ["nope"]}, "events"), ({"url": "file:///etc/passwd"}, "url"), ({"active": "maybe"}, "active"), ({"secret": SECRET}, "secret")],
)
async def test_bad_updates_change_nothing(client: httpx.AsyncClient, account: Account, body: dict, field: str) -> None:
    webhook = await create(client, account, "https://hooks.example.com/keep")
    details = assert_envelope(await client.put(f"/api/v1/webhooks/{webhook['id']}", headers=account.headers, json=body), 422)["details"]
    assert any(key.startswith(field) for key in details), details
    after = (await client.get(f"/api/v1/webhooks/{webhook['id']}", headers=account.headers)).json()
    assert after == {k: v for k, v in webhook.items() if k != "secret"}


async def test_bad_delivery_filters_and_ids(client: httpx.AsyncClient, account: Account) -> None:
    webhook = await create(client, account, "https://hooks.example.com/f")
    assert "status" in assert_envelope(await client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries", headers=account.headers, params={"status": "lost"}), 422)["details"]
    assert_envelope(await client.post(f"/api/v1/webhooks/deliveries/{uuid.uuid4()}/redeliver", headers=account.headers), 404)
    assert_envelope(await client.post(f"/api/v1/webhooks/{uuid.uuid4()}/test", headers=account.headers), 404)


# --- claims ------------------------------------------------------------------------------


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[Database]:
    """A database no live dispatcher looks at, so that the test alone claims."""
    with scratch_database(tmp_path) as url:
        migrations.upgrade(url)
        yield get_database(url)


def _queue(database: Database, deliveries: int) -> list[uuid.UUID]:
    with database.session() as session:
        workspace = Workspace(name="claims")
        session.add(workspace)
        session.flush()
        webhook = Webhook(workspace_id=workspace.id, url="https://hooks.example.com/c", events=["training.completed"], secret_encrypted="unused")
        session.add(webhook)
        session.flush()
        return [d.id for _ in range(deliveries) for d in service.emit(session, workspace.id, "training.completed", {"n": 1})]


def test_two_dispatchers_never_claim_the_same_attempt(own_database: Database) -> None:
    queued = _queue(own_database, 8)
    claims: list[list[Claimed]] = [[], []]
    start = threading.Barrier(2)

    def dispatcher(index: int) -> None:
        start.wait()
        claims[index] = claim(own_database, utcnow() + timedelta(seconds=1), timedelta(minutes=1))

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ids = [c.id for c in claims[0] + claims[1]]
    assert sorted(ids) == sorted(queued) and len(set(ids)) == len(ids)
    assert {c.number for c in claims[0] + claims[1]} == {1}
    assert claim(own_database, utcnow() + timedelta(seconds=1), timedelta(minutes=1)) == []  # all leased


def test_a_lapsed_claim_passes_on_and_the_late_answer_changes_nothing(own_database: Database, settings: Settings) -> None:
    [delivery_id] = _queue(own_database, 1)
    now = utcnow() + timedelta(seconds=1)
    [first] = claim(own_database, now, timedelta(seconds=5))
    assert claim(own_database, now + timedelta(seconds=1), timedelta(seconds=5)) == []
    [second] = claim(own_database, now + timedelta(seconds=6), timedelta(seconds=5))  # the first dispatcher died, say
    assert (first.number, second.number) == (1, 2)

    finish(own_database, settings, first, Outcome(utcnow(), 5, status_code=200))
    with own_database.session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None and delivery.status == "sending" and delivery.attempt_count == 2
        assert [a.number for a in service.attempts_of(session, [delivery_id])[delivery_id]] == [1]
    finish(own_database, settings, second, Outcome(utcnow(), 5, status_code=503))
    with own_database.session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None and delivery.status == "pending" and delivery.next_attempt_at is not None


# --- signing -----------------------------------------------------------------------------


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign("key", 1700000000, b'{"a":1}') == hmac.new(b"key", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()


def test_verify_good_tampered_and_stale() -> None:
    body, now = b'{"event":"training.completed"}', time.time()
    stamp = int(now)
    good = "sha256=" + sign(SECRET, stamp, body)
    assert verify(SECRET, str(stamp), good, body, now=now)
    assert verify(SECRET, str(stamp), good.removeprefix("sha256="), body, now=now)
    assert not verify(SECRET, str(stamp), good, body + b" ", now=now)
    assert not verify(SECRET, str(stamp + 1), good, body, now=now)
    assert not verify("another-secret-entirely", str(stamp), good, body, now=now)
    assert not verify(SECRET, str(stamp), good[:-1] + ("0" if good[-1] != "0" else "1"), body, now=now)
    assert not verify(SECRET, str(stamp), good, body, now=now + 301)
    assert not verify(SECRET, str(stamp), good, body, now=now - 301)
    assert verify(SECRET, str(stamp), good, body, tolerance_seconds=600, now=now + 301)
    for timestamp, signature in ((None, good), (str(stamp), None), ("", good), ("soon", good), (str(stamp), "sha256=ünicode")):
        assert not verify(SECRET, timestamp, signature, body, now=now)
