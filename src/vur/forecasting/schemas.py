from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

METRICS = ("rmse", "mae", "mape", "smape", "mase", "r2")


class ValidationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # time_series_split: n_splits rolling windows of one horizon each, at the end of the
    # history; holdout: the last horizon only.
    method: Literal["time_series_split", "holdout"] = "time_series_split"
    n_splits: StrictInt = Field(default=3, ge=1, le=20)


class OptimizationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False
    method: Literal["bayesian", "random", "grid"] = "bayesian"
    iterations: StrictInt = Field(default=50, ge=1, le=1000)
    metric: Literal[METRICS] = "rmse"  # type: ignore[valid-type]


class TrainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "algorithm": "sarima",
                    "hyperparameters": {"p": 1, "d": 1, "q": 1, "P": 1, "D": 1, "Q": 0, "season_length": 24},
                    "validation": {"method": "time_series_split", "n_splits": 3},
                    "optimization": {"enabled": False},
                    "metrics": ["rmse", "mae", "mape", "r2"],
                    "horizon": 48,
                    "levels": [80, 95],
                }
            ]
        },
    )

    dataset_id: uuid.UUID
    algorithm: str = Field(min_length=1, max_length=50)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    # Strict: "12" is a client bug worth reporting, not a number to guess.
    horizon: StrictInt = Field(default=24, ge=1, le=10_000)
    levels: list[StrictInt] = Field(default_factory=lambda: [80, 95], max_length=5)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    optimization: OptimizationSpec = Field(default_factory=OptimizationSpec)
    metrics: list[Literal[METRICS]] = Field(default_factory=lambda: list(METRICS), min_length=1, max_length=len(METRICS))  # type: ignore[valid-type]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    date_column: str | None = Field(default=None, max_length=255)
    target_column: str | None = Field(default=None, max_length=255)
    series_id_column: str | None = Field(default=None, max_length=255)

    @field_validator("levels")
    @classmethod
    def _levels_in_range(cls, levels: list[int]) -> list[int]:
        if any(not 1 <= level <= 99 for level in levels):
            raise ValueError("each level must be between 1 and 99")
        return sorted(set(levels))


class ModelConfigured(BaseModel):
    model_id: uuid.UUID
    status: str
    algorithm: str
    hyperparameters: dict[str, Any]
    config: dict[str, Any]


class TrainAccepted(BaseModel):
    model_id: uuid.UUID
    job_id: uuid.UUID
    status: str


class TrainingStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "training",
                    "progress": 75,
                    "current_epoch": None,
                    "total_epochs": None,
                    "logs": ["Loaded 700 rows in 1 series", "Holdout rmse=12.45"],
                    "metrics": {"rmse": 12.45, "mae": 8.32, "mape": 5.67},
                    "job_id": "6f1c0a2e-6c1d-4c53-9d43-0f3b0f8f4a10",
                    "error": None,
                }
            ]
        }
    )

    status: str
    progress: float
    current_epoch: int | None
    total_epochs: int | None
    logs: list[str]
    metrics: dict[str, Any]
    job_id: uuid.UUID | None
    error: str | None


class ForecastPoint(BaseModel):
    series_id: str
    timestamp: str
    value: float
    lower: dict[str, float]
    upper: dict[str, float]


class ForecastResponse(BaseModel):
    model_id: uuid.UUID
    algorithm: str
    horizon: int
    levels: list[int]
    frequency: str
    predictions: list[ForecastPoint]
