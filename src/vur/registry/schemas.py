from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from vur.core.db import MAX_DB_INT
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
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_DB_INT)
    note: str | None = Field(default=None, max_length=2000)


# --- LLMs (seed 004) --------------------------------------------------------------------

PROVIDER = r"^[a-z0-9][a-z0-9_-]{0,49}$"


class LlmModelCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "domain_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "name": "VR Chat Fine-tuned v1",
                    "base_model": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                    "provider": "together",
                    "model_family": "llama",
                    "version": "1.0",
                    "config": {"max_tokens": 4096},
                    "capabilities": {"supports_functions": True, "supports_vision": False},
                }
            ]
        },
    )

    domain_id: uuid.UUID | None = None
    name: str = Field(min_length=1, max_length=200)
    base_model: str = Field(min_length=1, max_length=200, description="The provider's identifier of the base model, e.g. gpt-4o-mini-2024-07-18")
    provider: str = Field(pattern=PROVIDER, description="openai, together, huggingface...; fine-tuning jobs run at openai and together")
    model_family: str | None = Field(default=None, max_length=50)
    version: str | None = Field(default=None, max_length=50)
    config: dict[str, Any] = Field(default_factory=dict)
    capabilities: dict[str, Any] = Field(default_factory=dict)


class LlmModelRead(BaseModel):
    """A registered LLM as seed 004 shows it. `config.fine_tuned_model` is the provider's
    id of the model a completed fine-tuning job made."""

    id: uuid.UUID
    kind: Literal["llm"] = "llm"
    domain_id: uuid.UUID | None
    name: str
    base_model: str
    provider: str
    model_family: str | None
    version: str | None
    status: ModelStatus
    config: dict[str, Any]
    capabilities: dict[str, Any]
    created_at: datetime
    updated_at: datetime
