from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from vur.jobs.models import JobStatus


class JobRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c0a2e-6c1d-4c53-9d43-0f3b0f8f4a10",
                    "type": "forecasting.train",
                    "status": "running",
                    "progress": 40.0,
                    "log": ["Loaded 8,760 rows", "Holdout evaluation: rmse=12.4"],
                    "result": None,
                    "error": None,
                    "attempts": 1,
                    "cancel_requested": False,
                    "created_at": "2026-11-25T12:00:00Z",
                    "started_at": "2026-11-25T12:00:01Z",
                    "finished_at": None,
                    "heartbeat_at": "2026-11-25T12:00:06Z",
                }
            ]
        },
    )

    id: uuid.UUID
    type: str
    status: JobStatus
    progress: float
    payload: dict[str, Any]
    log: list[str]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
