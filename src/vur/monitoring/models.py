from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class AlertRule(RecordMixin, Base):
    """A condition the alert evaluator checks. `error_threshold` watches one model's live
    error (MAE or RMSE of its scored predictions over `window_hours`); `job_failed` and
    `stream_stalled` need no rule: they are always on."""

    __tablename__ = "alert_rules"
    __resource__ = "Alert rule"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(10), default="mae")
    threshold: Mapped[float] = mapped_column(Float)
    window_hours: Mapped[int] = mapped_column(Integer, default=24)
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Alert(RecordMixin, Base):
    """Something that needs a person: open until acknowledged, resolved by a person or
    when its condition clears. `key` names the condition (rule and subject), so a
    condition that persists raises one alert, not one per check."""

    __tablename__ = "alerts"
    __resource__ = "Alert"
    __table_args__ = (
        Index("ix_alerts_workspace_status", "workspace_id", "status"),
        # One live alert per condition, even when two API processes check at once.
        Index("uq_alerts_active_key", "key", unique=True, sqlite_where=text("status != 'resolved'"), postgresql_where=text("status != 'resolved'")),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(200), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    # open | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(15), default="open")
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
