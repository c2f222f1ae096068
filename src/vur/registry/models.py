from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class ModelStatus(enum.StrEnum):
    configured = "configured"
    # A registered LLM (seed 004): described, not fine-tuned here yet.
    registered = "registered"
    training = "training"
    trained = "trained"
    failed = "failed"
    # Chosen to serve (dashboards count these as active); archived: kept, but no longer
    # trained or predicted with until restored.
    deployed = "deployed"
    archived = "archived"


class RegisteredModel(RecordMixin, Base):
    """One row of the model registry: a forecaster, a ranking model or an LLM (`kind`)."""

    __tablename__ = "models"
    __resource__ = "Model"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20), default="forecaster", index=True)
    name: Mapped[str] = mapped_column(String(200))
    algorithm: Mapped[str] = mapped_column(String(50))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    status: Mapped[ModelStatus] = mapped_column(Enum(ModelStatus, native_enum=False, length=16), default=ModelStatus.configured)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    training_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    artifact_key: Mapped[str | None] = mapped_column(String(300), default=None)
    trained_at: Mapped[datetime | None] = mapped_column(default=None)
    # The longest span (first to last timestamp, seconds) of the forecasts recorded for
    # it: a prediction that new observations can score ends at most this long after the
    # latest of them, which bounds the scoring query's scan (predictions.scoring).
    longest_forecast_seconds: Mapped[float | None] = mapped_column(Float, default=None)


class ModelVersion(RecordMixin, Base):
    """What one successful training produced: its parameters, metrics and the folder of
    its artifacts. Numbered from 1 per model; `saved` marks the versions a user kept."""

    __tablename__ = "model_versions"
    __resource__ = "Model version"
    __table_args__ = (UniqueConstraint("model_id", "number"),)

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(50))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_prefix: Mapped[str] = mapped_column(String(300))
    training_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    saved: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class LlmModel(Base):
    """What a `models` row of kind "llm" adds (seed 004): the base model a provider serves
    or fine-tunes, and what it can do. `domain_id` names a forge domain; no foreign key:
    the registry sits below the forge and does not depend on its tables."""

    __tablename__ = "llm_models"
    __resource__ = "Model"

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True, default=None)
    base_model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(50), index=True)
    model_family: Mapped[str | None] = mapped_column(String(50), default=None)
    version: Mapped[str | None] = mapped_column(String(50), default=None)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
