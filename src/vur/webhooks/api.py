from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from vur.core.deps import AppSettings, DbSession
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.webhooks import service
from vur.webhooks.models import WebhookDelivery
from vur.webhooks.schemas import DeliveryRead, DeliveryStatus, WebhookCreate, WebhookCreated, WebhookRead, WebhookUpdate

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


def _deliveries(session: Session, deliveries: list[WebhookDelivery]) -> list[DeliveryRead]:
    attempts = service.attempts_of(session, [delivery.id for delivery in deliveries])
    fields = set(DeliveryRead.model_fields) - {"attempts"}
    return [DeliveryRead.model_validate({**{name: getattr(d, name) for name in fields}, "attempts": attempts[d.id]}) for d in deliveries]


@router.post("", response_model=WebhookCreated, status_code=201, summary="Register a webhook. The signing secret is in this answer only")
def create_webhook(body: WebhookCreate, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> WebhookCreated:
    webhook, secret = service.create_webhook(session, settings, principal.workspace_id, principal.user_id, body)
    return WebhookCreated.model_validate({**WebhookRead.model_validate(webhook).model_dump(), "secret": secret})


@router.get("", response_model=list[WebhookRead], summary="Webhooks of the workspace, newest first")
def list_webhooks(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams) -> list[WebhookRead]:
    rows, total = service.list_webhooks(session, principal.workspace_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [WebhookRead.model_validate(row) for row in rows]


# Before "/{webhook_id}": "deliveries" is not a webhook id.
@router.get("/deliveries/{delivery_id}", response_model=DeliveryRead, summary="One delivery, with its attempts")
def get_delivery(delivery_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> DeliveryRead:
    return _deliveries(session, [service.get_delivery(session, delivery_id, principal.workspace_id)])[0]


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryRead,
    status_code=202,
    summary="Send a delivered or failed delivery again, with a fresh retry budget (409 while it is queued)",
)
def redeliver(delivery_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> DeliveryRead:
    delivery = service.redeliver(session, service.get_delivery(session, delivery_id, principal.workspace_id, for_update=True))
    return _deliveries(session, [delivery])[0]


@router.get("/{webhook_id}", response_model=WebhookRead, summary="One webhook (never its secret)")
def get_webhook(webhook_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> WebhookRead:
    return WebhookRead.model_validate(service.get_webhook(session, webhook_id, principal.workspace_id))


@router.put("/{webhook_id}", response_model=WebhookRead, summary="Change the URL, events, description or whether it is active")
def update_webhook(webhook_id: uuid.UUID, body: WebhookUpdate, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> WebhookRead:
    webhook = service.get_webhook(session, webhook_id, principal.workspace_id, for_update=True)
    return WebhookRead.model_validate(service.update_webhook(session, settings, webhook, body))


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook with its deliveries")
def delete_webhook(webhook_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> None:
    service.delete_webhook(session, service.get_webhook(session, webhook_id, principal.workspace_id, for_update=True))


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryRead], summary="Deliveries of a webhook, newest first, with their attempts")
def list_deliveries(webhook_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, status: DeliveryStatus | None = None) -> list[DeliveryRead]:
    webhook = service.get_webhook(session, webhook_id, principal.workspace_id)
    rows, total = service.list_deliveries(session, webhook, status=status, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return _deliveries(session, rows)


@router.post("/{webhook_id}/test", response_model=DeliveryRead, status_code=202, summary="Queue a `ping` delivery to this webhook only")
def ping_webhook(webhook_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> DeliveryRead:
    return _deliveries(session, [service.ping(session, service.get_webhook(session, webhook_id, principal.workspace_id))])[0]
