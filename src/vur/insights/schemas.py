"""Machines and rankings: the canonical shapes, and those of seed 003's paths."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vur.insights.models import MachineStatus
from vur.insights.ranking import Algorithm

Direction = Literal["positive", "negative", "mixed"]


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = []
    for tag in tags:
        tag = tag.strip()
        if not tag or len(tag) > 50:
            raise ValueError("tags are 1 to 50 characters")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


class MachineCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"machine_name": "Press 01", "description": "Hydraulic press, line A", "tags": ["line-a", "press"]}]},
    )

    machine_name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("machine_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return _clean_tags(value)


class MachineUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"description": "Moved to line B", "tags": ["line-b"]}]})

    machine_name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = Field(default=None, max_length=20)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _clean_tags(value)


class MachineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int = Field(description="The machine's integer id on the seed's paths (/machines/{machine_id})")
    machine_name: str = Field(validation_alias="name")
    description: str | None
    tags: list[str]
    status: MachineStatus
    model_id: uuid.UUID | None = Field(description="Its ranking model in the registry (kind 'ranking')")
    training_job_id: uuid.UUID | None
    metrics: dict[str, Any]
    error: str | None = Field(description="Why the latest training failed")
    trained_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TrainAccepted(BaseModel):
    machine_id: uuid.UUID
    job_id: uuid.UUID
    dataset_id: uuid.UUID
    status: MachineStatus
    features: list[str] = Field(description="The variables the ranking will consider")
    left_out: dict[str, str] = Field(description="Columns not considered, and why")


class RankingItem(BaseModel):
    variable: str
    rank: int
    importance: float = Field(description="Mean of the permutation and mean-|SHAP| shares; a ranking's importances sum to 1")
    importance_std: float = Field(description="Spread of the permutation repeats, on the importance scale")
    direction: Direction = Field(description="positive: raising the variable raises the target; negative: lowers it; mixed: neither holds throughout")
    permutation_importance: float = Field(description="Drop of the held-out R² when the variable is shuffled")
    permutation_importance_std: float
    importance_shap_mean_abs: float = Field(description="Mean |SHAP value|, in the target's units")
    importance_native: float = Field(description="The model's own importance (tree gain or |standardized coefficient|) as a share, 0-1")
    shap_norm: float = Field(description="Mean |SHAP| over the largest one, 0-1")
    native_norm: float = Field(description="Native importance over the largest one, 0-1")


class PartialDependence(BaseModel):
    variable: str
    values: list[float] = Field(description="The variable's values, 5th to 95th percentile")
    average: list[float] = Field(description="The model's average prediction at each value")


class RankingRead(BaseModel):
    ranking_id: uuid.UUID
    machine_id: uuid.UUID
    model_id: uuid.UUID | None
    version: int
    algorithm: Algorithm
    target_column: str
    dataset_id: uuid.UUID | None
    trained_at: datetime
    ranking: list[RankingItem]
    metrics: dict[str, Any] = Field(description="Held-out r2, rmse, mae; n_train, n_test, n_features; date; cv: k-fold means and spreads")
    partial_dependence: list[PartialDependence]
    dropped: dict[str, str] = Field(description="Columns left out, and why")


class RankingSummary(BaseModel):
    ranking_id: uuid.UUID
    version: int
    algorithm: Algorithm
    target_column: str
    trained_at: datetime
    metrics: dict[str, Any]
    top: list[str] = Field(description="The five most important variables")


class VariableMove(BaseModel):
    variable: str
    rank: int | None = Field(description="None when the variable is not in this ranking")
    previous_rank: int | None = Field(description="None when the variable was not in the earlier ranking")
    rank_change: int | None = Field(description="Positive: moved up")
    importance: float | None
    previous_importance: float | None
    importance_change: float | None
    direction: Direction | None
    previous_direction: Direction | None
    direction_changed: bool


class RankingComparison(BaseModel):
    machine_id: uuid.UUID
    version: int
    previous_version: int
    variables: list[VariableMove] = Field(description="Every variable of either ranking, in this ranking's order")
    entered_top: list[str] = Field(description="Variables in this top 5 that were not in the earlier one")
    left_top: list[str] = Field(description="Variables of the earlier top 5 no longer in it")
    metrics_change: dict[str, float] = Field(description="This ranking's r2, rmse, mae minus the earlier one's")


# --- seed 003's paths --------------------------------------------------------------


class SeedMachineCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"machine_name": "Prensa 01"}]})

    machine_name: str = Field(min_length=1, max_length=200)


class SeedMachine(BaseModel):
    """Seed 003's `Machine`: integer ids. `model_id` is the machine's ranking model, which
    shares the machine's number."""

    machine_name: str
    id: int
    status: str
    model_id: int


class SeedWebhook(BaseModel):
    """What the model service posted to /webhook/treinamento/ in seed 003."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"model_id": 1, "status": "completed", "metrics": {"r2": 0.91, "mae": 0.8, "rmse": 1.1}}]})

    model_id: int | uuid.UUID | None = None
    status: str | None = None
    metrics: dict[str, Any] | None = None
