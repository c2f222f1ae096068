"""Pipelines: the seven steps, their configurations and the export document.

Each step's configuration is the body of the endpoint that does that step on its own,
so a pipeline and a user clicking through the studio ask for the same things.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vur.datasets.schemas import DatasetConfig, FeatureEngineering, PreprocessRequest, SplitRequest
from vur.forecasting.schemas import TrainRequest
from vur.pipelines.models import PipelineStatus

STEP_NAMES = ("upload", "preview", "split", "preprocessing", "features", "model", "training")
StepName = Literal["upload", "preview", "split", "preprocessing", "features", "model", "training"]
# skipped: an optional step (preview, split, preprocessing, features) without configuration.
StepStatus = Literal["pending", "running", "completed", "skipped", "failed"]
DONE = ("completed", "skipped")

FORMAT = "vur.pipeline"
VERSION = 1


class UploadConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: uuid.UUID = Field(description="A dataset of the workspace, from POST /api/v1/datasets/upload")


class ModelStepConfig(TrainRequest):
    """The body of POST /api/v1/models/configure."""

    dataset_id: uuid.UUID | None = Field(default=None, description="Default: the dataset the earlier steps produced")


class StepConfigs(BaseModel):
    """Step configurations by step name. upload: the uploaded dataset; preview: the body of
    PUT /api/v1/datasets/{id}/config; split: of POST .../split; preprocessing: of POST
    .../preprocess; features: its `feature_engineering`; model: of POST
    /api/v1/models/configure. Training has nothing to configure."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "upload": {"dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21"},
                    "split": {"train_size": 0.8, "test_size": 0.2},
                    "model": {"algorithm": "naive", "horizon": 24},
                }
            ]
        },
    )

    upload: UploadConfig | None = None
    preview: DatasetConfig | None = None
    split: SplitRequest | None = None
    preprocessing: PreprocessRequest | None = None
    features: FeatureEngineering | None = None
    model: ModelStepConfig | None = None


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    steps: StepConfigs = Field(default_factory=StepConfigs)


class PipelineUpdate(BaseModel):
    """Only what is given changes. A step whose configuration changes goes back to
    pending, and so does every step after it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"steps": {"model": {"algorithm": "seasonal_naive", "horizon": 48}}}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    steps: StepConfigs | None = None


class StepOutput(BaseModel):
    """What a done step produced: the dataset the next steps read, or the model."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: uuid.UUID | None = None
    model_id: uuid.UUID | None = None


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: StepStatus = "pending"
    output: StepOutput = Field(default_factory=StepOutput)


class UploadStep(_Step):
    name: Literal["upload"]
    config: UploadConfig | None = None


class PreviewStep(_Step):
    name: Literal["preview"]
    config: DatasetConfig | None = None


class SplitStep(_Step):
    name: Literal["split"]
    config: SplitRequest | None = None


class PreprocessingStep(_Step):
    name: Literal["preprocessing"]
    config: PreprocessRequest | None = None


class FeaturesStep(_Step):
    name: Literal["features"]
    config: FeatureEngineering | None = None


class ModelStep(_Step):
    name: Literal["model"]
    config: ModelStepConfig | None = None


class TrainingStep(_Step):
    name: Literal["training"]
    config: None = None


PipelineStep = Annotated[UploadStep | PreviewStep | SplitStep | PreprocessingStep | FeaturesStep | ModelStep | TrainingStep, Field(discriminator="name")]


def _in_order(steps: list[_Step]) -> list[_Step]:
    names = tuple(step.name for step in steps)  # type: ignore[attr-defined]
    if names != STEP_NAMES:
        raise ValueError(f"the steps must be {list(STEP_NAMES)}, in that order")
    return steps


class PipelineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    status: PipelineStatus
    steps: list[PipelineStep]
    current_step: StepName
    completed_steps: list[StepName]
    dataset_id: uuid.UUID | None
    model_id: uuid.UUID | None
    last_job_id: uuid.UUID | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class PipelineContent(BaseModel):
    """What an export carries: the configuration and how far the steps got."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    steps: list[PipelineStep] = Field(min_length=len(STEP_NAMES), max_length=len(STEP_NAMES))

    _steps_in_order = field_validator("steps")(_in_order)


class PipelineDocument(BaseModel):
    """A pipeline as GET /export writes it and POST /import reads it. `installation` names
    the VUR installation that exported it (absent from documents exported before it was
    written); `signature` is the HMAC-SHA256, under that installation's secret key, of the
    canonical JSON of every other field. The installation that exported a document
    refuses it if the signature does not match; another one cannot check it and imports
    the configuration alone."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["vur.pipeline"]
    version: Literal[1]
    exported_at: datetime
    installation: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    pipeline: PipelineContent
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")


class RunAccepted(BaseModel):
    pipeline_id: uuid.UUID
    job_id: uuid.UUID
    status: str
