from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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
