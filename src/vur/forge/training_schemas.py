"""Request and response shapes of the forge's exports and training jobs (seed 004)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

ExportFormat = Literal["jsonl", "json", "csv"]
# chat: {"messages": [system, user, assistant]} (supervised fine-tuning, OpenAI and Together);
# preference: the ideal response preferred over the bad one (DPO, both providers' format).
ExportLayout = Literal["chat", "preference"]
TrainingStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
FineTuneProvider = Literal["openai", "together"]


class ExportFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_quality_score: float | None = Field(default=None, ge=0, le=1)


class ExportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"format": "jsonl", "layout": "chat", "approved_only": True, "filters": {"min_quality_score": 0.8}}]},
    )

    format: ExportFormat = "jsonl"
    layout: ExportLayout = "chat"
    approved_only: StrictBool = Field(default=True, description="Only approved items; otherwise pending ones too (rejected items are never exported)")
    filters: ExportFilters = Field(default_factory=ExportFilters)


class ExportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    dataset_id: uuid.UUID
    export_version: int
    format: ExportFormat
    layout: ExportLayout
    s3_key: str
    status: Literal["pending", "processing", "completed", "failed"]
    item_count: int
    size_bytes: int
    filters_applied: dict[str, Any]
    download_url: str | None = Field(default=None, description="Signed and short-lived; only in the answer to the export itself")
    created_at: datetime


class DownloadUrl(BaseModel):
    download_url: str
    expires_at: datetime


class Hyperparameters(BaseModel):
    """What each provider takes: OpenAI epochs, batch_size, learning_rate_multiplier;
    Together epochs, batch_size, learning_rate, warmup_ratio."""

    model_config = ConfigDict(extra="forbid")

    epochs: StrictInt | None = Field(default=None, ge=1, le=100)
    batch_size: StrictInt | None = Field(default=None, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, lt=1)
    learning_rate_multiplier: float | None = Field(default=None, gt=0, le=100)
    warmup_ratio: float | None = Field(default=None, ge=0, le=1)


class TrainingJobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model_id": "6f1c0a2e-6c1d-4c53-9d43-0f3b0f8f4a10",
                    "dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "dataset_export_id": "3d2b1c4e-9a8f-4e7d-8c6b-5a4f3e2d1c0b",
                    "provider": "together",
                    "hyperparameters": {"learning_rate": 2e-5, "epochs": 3, "batch_size": 8},
                }
            ]
        },
    )

    model_id: uuid.UUID = Field(description="A registered LLM (POST /api/v1/models)")
    dataset_id: uuid.UUID
    dataset_export_id: uuid.UUID | None = Field(default=None, description="A JSONL export of the dataset; its latest one when absent")
    provider: FineTuneProvider
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    suffix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$", description="Added to the fine-tuned model's name by the provider")


class TrainingJobRead(BaseModel):
    """A fine-tuning job (`type` fine_tuning), or a forecasting or ranking training from the
    jobs table in the same shape (provider "vur")."""

    id: uuid.UUID
    type: str
    model_id: uuid.UUID | None
    dataset_id: uuid.UUID | None
    dataset_export_id: uuid.UUID | None
    status: TrainingStatus
    provider: str
    external_job_id: str | None
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    error_message: str | None
    cancel_requested: bool
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
