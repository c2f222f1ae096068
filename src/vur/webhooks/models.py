from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class Webhook(RecordMixin, Base):
    """A URL of the workspace's that is told, by a signed POST, when one of `events` happens.
    The signing secret is kept encrypted with the instance key and shown only at creation."""

    __tablename__ = "webhooks"
    __resource__ = "Webhook"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(RecordMixin, Base):
    """One event to send to one webhook, and where its sending stands.

    pending: due at `next_attempt_at`; sending: claimed by a dispatcher until
    `next_attempt_at` (a lease: a dispatcher that died leaves it claimable again);
    delivered: answered 2xx; failed: out of attempts."""

    __tablename__ = "webhook_deliveries"
    __resource__ = "Webhook delivery"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(15), default="pending")
    # Attempts made so far, and how many of them came before the latest (re)queueing:
    # the retry budget counts from there, the attempt numbers go on.
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    base_attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(RecordMixin, Base):
    """One POST of a delivery and what came back (a status code, or the error instead)."""

    __tablename__ = "webhook_attempts"
    __resource__ = "Webhook attempt"
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
