"""Webhooks: the subscriptions a workspace keeps, and the deliveries that events queue.

Any domain tells the workspace's webhooks about an event with `emit`, inside its own
transaction: the deliveries exist exactly when the change that caused them committed.
Sending them is the dispatcher's job (dispatcher.py).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vur.core.db import utcnow
from vur.core.outbound import TargetRefused, checked_target
from vur.core.repository import get_scoped, paginate
from vur.core.security import encrypt_secret
from vur.settings import Settings
from vur.webhooks.exceptions import DeliveryNotFound, DeliveryQueued, InvalidTarget, WebhookNotFound
from vur.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from vur.webhooks.schemas import EVENTS, PING, WebhookCreate, WebhookUpdate

QUEUED = ("pending", "sending")


# --- subscriptions -------------------------------------------------------------------


def create_webhook(session: Session, settings: Settings, workspace_id: uuid.UUID, user_id: uuid.UUID, body: WebhookCreate) -> tuple[Webhook, str]:
    """The new webhook and its signing secret, which is stored only encrypted."""
    check_target(settings, body.url)
    secret = body.secret or secrets.token_urlsafe(32)
    webhook = Webhook(
        workspace_id=workspace_id,
        created_by=user_id,
        url=body.url,
        events=list(body.events),
        description=body.description,
        secret_encrypted=encrypt_secret(settings.resolved_secret_key(), secret),
    )
    session.add(webhook)
    session.flush()
    return webhook, secret


def check_target(settings: Settings, url: str) -> None:
    try:
        checked_target(url, settings.webhook_allow_private_targets)
    except TargetRefused as exc:
        raise InvalidTarget("The webhook URL is refused", {"url": str(exc)}) from exc


def get_webhook(session: Session, webhook_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> Webhook:
    return get_scoped(session, Webhook, webhook_id, workspace_id, WebhookNotFound, for_update=for_update)


def list_webhooks(session: Session, workspace_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[Webhook], int]:
    stmt = select(Webhook).where(Webhook.workspace_id == workspace_id).order_by(Webhook.created_at.desc(), Webhook.id)
    return paginate(session, stmt, limit=limit, offset=offset)


def update_webhook(session: Session, settings: Settings, webhook: Webhook, body: WebhookUpdate) -> Webhook:
    if body.url is not None:
        check_target(settings, body.url)
        webhook.url = body.url
    if body.events is not None:
        webhook.events = list(body.events)
    if body.active is not None:
        webhook.active = body.active
    if "description" in body.model_fields_set:
        webhook.description = body.description
    session.flush()
    return webhook


def delete_webhook(session: Session, webhook: Webhook) -> None:
    """Its deliveries and their attempts go with it (ON DELETE CASCADE)."""
    session.delete(webhook)
    session.flush()


# --- deliveries ----------------------------------------------------------------------


def emit(session: Session, workspace_id: uuid.UUID, event: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """Queue `event` for every active webhook of the workspace that listens to it, in the
    caller's transaction. The receiver gets {"event", "delivery_id", "created_at",
    **payload}; the payload must be JSON-serialisable."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; known: {EVENTS}")
    webhooks = session.scalars(select(Webhook).where(Webhook.workspace_id == workspace_id, Webhook.active.is_(True)).order_by(Webhook.created_at))
    return [_queue(session, webhook, event, payload) for webhook in webhooks if event in webhook.events]


def ping(session: Session, webhook: Webhook) -> WebhookDelivery:
    """A `ping` delivery to this webhook only, whatever its events and even if inactive:
    it is how a user checks the receiver before real events flow."""
    return _queue(session, webhook, PING, {"webhook_id": str(webhook.id), "events": webhook.events})


def _queue(session: Session, webhook: Webhook, event: str, payload: dict[str, Any]) -> WebhookDelivery:
    delivery = WebhookDelivery(workspace_id=webhook.workspace_id, webhook_id=webhook.id, event=event, payload=payload, status="pending", next_attempt_at=utcnow())
    session.add(delivery)
    session.flush()
    return delivery


def get_delivery(session: Session, delivery_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> WebhookDelivery:
    return get_scoped(session, WebhookDelivery, delivery_id, workspace_id, DeliveryNotFound, for_update=for_update)


def list_deliveries(session: Session, webhook: Webhook, *, status: str | None, limit: int, offset: int) -> tuple[list[WebhookDelivery], int]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.workspace_id == webhook.workspace_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return paginate(session, stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id), limit=limit, offset=offset)


def attempts_of(session: Session, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """Each delivery's attempts, first to last (one query for a whole page)."""
    found: dict[uuid.UUID, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        for attempt in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.number)):
            found[attempt.delivery_id].append(attempt)
    return found


def redeliver(session: Session, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue a delivered or failed delivery again, with a fresh retry budget; its attempt
    numbers go on from the last one."""
    if delivery.status in QUEUED:
        raise DeliveryQueued(f"Webhook delivery '{delivery.id}' is already queued", {"status": delivery.status})
    delivery.status, delivery.base_attempt, delivery.next_attempt_at, delivery.delivered_at = "pending", delivery.attempt_count, utcnow(), None
    session.flush()
    return delivery
