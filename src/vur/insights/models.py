"""Machines and the rankings their trainings produced."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class MachineStatus(enum.StrEnum):
    # The words of seed 003, which its frontend compares against.
    created = "created"
    training = "training"
    completed = "completed"
    failed = "failed"


class Machine(RecordMixin, Base):
    """A production machine whose process data explains a target. `number` is the
    integer id of the seed's paths (/machines/{machine_id}); `model_id` its ranking model
    in the registry (kind "ranking"), created with the machine."""

    __tablename__ = "machines"
    __resource__ = "Machine"
    __table_args__ = (UniqueConstraint("workspace_id", "number"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[MachineStatus] = mapped_column(Enum(MachineStatus, native_enum=False, length=16), default=MachineStatus.created, index=True)
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), default=None)
    training_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    # The latest metrics, from the latest ranking or an incoming webhook.
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Why the latest training failed.
    error: Mapped[str | None] = mapped_column(Text, default=None)
    trained_at: Mapped[datetime | None] = mapped_column(default=None)


class MachineCounter(Base):
    """The last machine number given in a workspace: numbers are never given twice, even
    after the machine that had one is deleted (a stale frontend link or webhook must not
    reach a newer machine)."""

    __tablename__ = "machine_counters"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Ranking(RecordMixin, Base):
    """What one successful training found; a machine keeps every one (its history).
    `version` is the ranking model's version in the registry."""

    __tablename__ = "machine_rankings"
    __resource__ = "Ranking"
    __table_args__ = (UniqueConstraint("machine_id", "version"),)

    machine_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), default=None)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    target_column: Mapped[str] = mapped_column(String(300))
    algorithm: Mapped[str] = mapped_column(String(30))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    partial_dependence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Columns left out of the ranking, and why (constant, empty, text, identifier...).
    dropped: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    trained_at: Mapped[datetime] = mapped_column()
