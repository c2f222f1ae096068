from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin

# A prediction with points still without an actual: the only ones scoring reads, and the
# only ones the span index holds (the scoring query states it the same way, so it is used).
UNSCORED = "scored_points < horizon * series_count"


class Prediction(RecordMixin, Base):
    """One answered prediction request: which model version, what was asked, what it
    answered and how long it took. Kept after the model is deleted (model_id NULL)."""

    __tablename__ = "predictions"
    __resource__ = "Prediction"
    __table_args__ = (
        Index("ix_predictions_workspace_created", "workspace_id", "created_at"),
        # Finds the predictions that new observations can score (scoring.score_earlier): a seek
        # to the spans that reach them, in the pages' order, among those not fully scored.
        Index("ix_predictions_unscored_span", "model_id", "last_ts", "id", "first_ts", sqlite_where=text(UNSCORED), postgresql_where=text(UNSCORED)),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    model_version: Mapped[int] = mapped_column(Integer)
    # api | batch | real_time | stream
    source: Mapped[str] = mapped_column(String(20), index=True)
    horizon: Mapped[int] = mapped_column(Integer)
    series_count: Mapped[int] = mapped_column(Integer)
    # What was asked, summarised: levels, series, observations given and their span.
    input_summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The span of the forecast timestamps (naive UTC, like them): which predictions
    # newly observed values can score.
    first_ts: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    last_ts: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    latency_ms: Mapped[float] = mapped_column(Float)
    # Scored as actual values arrive (observations in later requests, or a stream's
    # source): how many forecast points met their actual, and the error sums.
    scored_points: Mapped[int] = mapped_column(Integer, default=0)
    absolute_error_sum: Mapped[float] = mapped_column(Float, default=0.0)
    squared_error_sum: Mapped[float] = mapped_column(Float, default=0.0)


class DatabaseConnection(RecordMixin, Base):
    """An external SQL source that streams read: where the rows are and which columns
    hold the time, the value and (optionally) the series. The URL, password included,
    is stored encrypted; only its dialect, host and database name are shown."""

    __tablename__ = "database_connections"
    __resource__ = "Database connection"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    dialect: Mapped[str] = mapped_column(String(20))
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    database: Mapped[str | None] = mapped_column(String(255), default=None)
    url_encrypted: Mapped[str] = mapped_column(Text)
    table_name: Mapped[str | None] = mapped_column(String(255), default=None)
    query: Mapped[str | None] = mapped_column(Text, default=None)
    timestamp_column: Mapped[str] = mapped_column(String(255))
    value_column: Mapped[str] = mapped_column(String(255))
    series_column: Mapped[str | None] = mapped_column(String(255), default=None)
    # Read for models fitted with exogenous columns: the future values in rows ahead.
    exogenous_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # untested | connected | failed
    status: Mapped[str] = mapped_column(String(20), default="untested")
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class PredictionStream(RecordMixin, Base):
    """A model predicting every `interval_seconds` from the rows that reached a source
    since the last read. The cursor (`last_timestamp`) lives here, so a restarted
    server resumes where the stream was."""

    __tablename__ = "prediction_streams"
    __resource__ = "Prediction stream"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    database_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("database_connections.id", ondelete="CASCADE"), index=True)
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    interval_seconds: Mapped[float] = mapped_column(Float)
    horizon: Mapped[int] = mapped_column(Integer)
    # running | stopped | failed
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    last_timestamp: Mapped[datetime | None] = mapped_column(default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_new_rows_at: Mapped[datetime | None] = mapped_column(default=None)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    predictions_made: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
