from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class Prediction(RecordMixin, Base):
    """One answered prediction request: which model version, what was asked, what it
    answered and how long it took. Kept after the model is deleted (model_id NULL)."""

    __tablename__ = "predictions"
    __resource__ = "Prediction"
    __table_args__ = (Index("ix_predictions_workspace_created", "workspace_id", "created_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    # api | batch | real_time | stream
    source: Mapped[str] = mapped_column(String(20), index=True)
    horizon: Mapped[int] = mapped_column(Integer)
    series_count: Mapped[int] = mapped_column(Integer)
    # What was asked, summarised: levels, series, observations given and their span.
    input_summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    latency_ms: Mapped[float] = mapped_column(Float)
    # Scored as actual values arrive (observations in later requests, or a stream's
    # source): how many forecast points met their actual, and the error sums.
    scored_points: Mapped[int] = mapped_column(Integer, default=0)
    absolute_error_sum: Mapped[float] = mapped_column(Float, default=0.0)
    squared_error_sum: Mapped[float] = mapped_column(Float, default=0.0)
