from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from vur.registry.models import ModelStatus


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    name: str
    algorithm: str
    hyperparameters: dict[str, Any]
    config: dict[str, Any]
    dataset_id: uuid.UUID | None
    status: ModelStatus
    metrics: dict[str, Any]
    training_job_id: uuid.UUID | None
    created_at: datetime
    trained_at: datetime | None


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    algorithm: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    training_job_id: uuid.UUID | None
    saved: bool
    note: str | None
    created_at: datetime


class SaveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 2, "note": "best rmse so far; used by the weekly report"}]})

    # None: the latest version.
    version: StrictInt | None = Field(default=None, ge=1)
    note: str | None = Field(default=None, max_length=2000)
