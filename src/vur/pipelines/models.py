from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class PipelineStatus(enum.StrEnum):
    # draft: not yet runnable; ready: it has a dataset and a model configuration.
    draft = "draft"
    ready = "ready"
    running = "running"
    completed = "completed"
    failed = "failed"


class Pipeline(RecordMixin, Base):
    """The seven steps of the forecasting studio (upload, preview, split, preprocessing,
    features, model, training), each `{"name", "config", "status", "output"}`, in order.
    `dataset_id` and `model_id` are the latest dataset and model the done steps produced;
    `completed_steps` lists the steps that are done (completed or skipped)."""

    __tablename__ = "pipelines"
    __resource__ = "Pipeline"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[PipelineStatus] = mapped_column(Enum(PipelineStatus, native_enum=False, length=16), default=PipelineStatus.draft, index=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    current_step: Mapped[str] = mapped_column(String(20), default="upload")
    completed_steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True, default=None)
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True, default=None)
    last_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    # Why the last run failed or stopped, naming the step.
    error: Mapped[str | None] = mapped_column(Text, default=None)
