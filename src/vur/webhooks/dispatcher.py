"""Sending webhook deliveries, from every API process at once without sending one attempt twice.

Each pass claims the due deliveries with a compare-and-set update (the attempt count it
read must still be there), commits, sends them outside any transaction, then records each
attempt and the delivery's next state. A claim is a lease: a process that dies while
sending leaves the delivery claimable again once the lease runs out.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Select, bindparam, select, update

from vur import __version__
from vur.core.db import Database, utcnow
from vur.core.outbound import checked_target, request_parts
from vur.core.periodic import PeriodicTask
from vur.core.security import decrypt_secret
from vur.settings import Settings
from vur.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from vur.webhooks.service import QUEUED
from vur.webhooks.signing import PREFIX, sign

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("vur.webhooks")

# Deliveries claimed per pass, all sent at once: a slow receiver holds up one thread, not the queue.
BATCH = 8
# httpx's timeout bounds each phase (connect, write, read) rather than the whole request.
LEASE_TIMEOUTS = 4
LEASE_GRACE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0
EXCERPT_CHARS = 500
ERROR_CHARS = 1000


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    number: int
    base_attempt: int
    event: str
    payload: dict[str, Any]
    created_at: datetime
    url: str
    secret_encrypted: str


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: float | None = None


def webhook_dispatcher(database: Database, settings: Settings) -> PeriodicTask:
    return PeriodicTask("vur-webhook-dispatcher", settings.webhook_poll_seconds, lambda: dispatch(database, settings))


def dispatch(database: Database, settings: Settings) -> None:
    """One pass: claim what is due, send it, record it."""
    import httpx  # on first use: the API starts without it

    lease = timedelta(seconds=LEASE_TIMEOUTS * settings.webhook_timeout_seconds + LEASE_GRACE_SECONDS)
    claimed = claim(database, utcnow(), lease)
    if not claimed:
        return
    client = httpx.Client(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        # An environment proxy would connect on our behalf, past the address check.
        trust_env=False,
        # No reuse: a pooled connection is keyed by the checked IP, and a TLS one verified for
        # one host name must not carry the request of another name on that IP.
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    with client, ThreadPoolExecutor(len(claimed), thread_name_prefix="vur-webhook-send") as pool:
        list(pool.map(lambda delivery: finish(database, settings, delivery, send(client, settings, delivery)), claimed))


def claim(database: Database, now: datetime, lease: timedelta) -> list[Claimed]:
    # Read without a session: each API process asks every second, and mostly nothing is due.
    due = database.read(_due(), {"now": now})
    if not due:
        return []
    with database.session() as session:
        ids = []
        for delivery_id, count in due:
            # Whoever changes the count first owns this attempt; the other update matches no row.
            won = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempt_count == count, WebhookDelivery.status.in_(QUEUED), WebhookDelivery.next_attempt_at <= now)
                .values(status="sending", attempt_count=count + 1, next_attempt_at=now + lease)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount == 1:
                ids.append(delivery_id)
        if not ids:
            return []
        rows = session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret_encrypted).join(Webhook, Webhook.id == WebhookDelivery.webhook_id).where(WebhookDelivery.id.in_(ids))
        ).all()
        return [Claimed(d.id, d.attempt_count, d.base_attempt, d.event, d.payload, d.created_at, url, secret) for d, url, secret in rows]


@cache
def _due() -> Select[Any]:
    deliveries = WebhookDelivery.__table__.c
    due = deliveries.status.in_(QUEUED) & (deliveries.next_attempt_at <= bindparam("now"))
    return select(deliveries.id, deliveries.attempt_count).where(due).order_by(deliveries.next_attempt_at).limit(BATCH)


def send(client: httpx.Client, settings: Settings, delivery: Claimed) -> Outcome:
    import httpx

    started, clock = utcnow(), time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - clock) * 1000)

    try:
        # Checked again now: the name may point elsewhere than at registration.
        target = checked_target(delivery.url, settings.webhook_allow_private_targets)
        secret = decrypt_secret(settings.resolved_secret_key(), delivery.secret_encrypted)
        body = json.dumps({"event": delivery.event, "delivery_id": str(delivery.id), "created_at": delivery.created_at.isoformat(), **delivery.payload}).encode()
        timestamp = int(time.time())
        url, headers, extensions = request_parts(target)
        headers |= {
            "Content-Type": "application/json",
            "User-Agent": f"VUR-Webhooks/{__version__}",
            # An excerpt of the raw answer is all we keep: no decompressing.
            "Accept-Encoding": "identity",
            "X-VUR-Event": delivery.event,
            "X-VUR-Delivery": str(delivery.id),
            "X-VUR-Timestamp": str(timestamp),
            "X-VUR-Signature": PREFIX + sign(secret, timestamp, body),
        }
        with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
            excerpt = _excerpt(response)
        return Outcome(started, elapsed(), status_code=response.status_code, response_body=excerpt, retry_after=_retry_after(response))
    except httpx.TimeoutException:
        return Outcome(started, elapsed(), error=f"timed out after {settings.webhook_timeout_seconds:g} s")
    except Exception as exc:  # anything else is this attempt's error too, so the retry budget still runs out
        return Outcome(started, elapsed(), error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])


def _excerpt(response: httpx.Response) -> str:
    import httpx

    data = b""
    try:
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= 4 * EXCERPT_CHARS:  # enough bytes for 500 characters of UTF-8
                break
    except httpx.HTTPError:
        pass  # the status came; a body cut short does not change what it says
    return data.decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if response.status_code in (429, 503) and value.isdigit():
        return float(value)
    return None


def finish(database: Database, settings: Settings, delivery: Claimed, outcome: Outcome) -> None:
    with database.session() as session:
        if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.id == delivery.id)) is None:
            return  # deleted with its webhook while we sent it
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                number=delivery.number,
                started_at=outcome.started_at,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                error=outcome.error,
                response_body=outcome.response_body,
            )
        )
        now = utcnow()
        status, next_attempt_at = next_state(settings, delivery, outcome, now)
        # Only if our claim still holds: after a lapsed lease another process owns the delivery.
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.attempt_count == delivery.number, WebhookDelivery.status == "sending")
            .values(status=status, next_attempt_at=next_attempt_at, delivered_at=now if status == "delivered" else None)
            .execution_options(synchronize_session=False)
        )
    log.info("webhook_attempt", delivery_id=str(delivery.id), attempt=delivery.number, status_code=outcome.status_code, error=outcome.error, outcome=status)


def next_state(settings: Settings, delivery: Claimed, outcome: Outcome, now: datetime) -> tuple[str, datetime | None]:
    """delivered on a 2xx; failed once this round's attempts are spent; else pending again
    after the receiver's Retry-After or base × 2^(attempt − 1) seconds, capped."""
    if outcome.status_code is not None and 200 <= outcome.status_code < 300:
        return "delivered", None
    made = delivery.number - delivery.base_attempt
    if made >= settings.webhook_max_attempts:
        return "failed", None
    delay = outcome.retry_after if outcome.retry_after is not None else settings.webhook_retry_base_seconds * 2 ** min(made - 1, 32)
    return "pending", now + timedelta(seconds=min(delay, RETRY_CAP_SECONDS))
