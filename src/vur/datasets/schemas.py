from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator


class UploadResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "filename": "sales_data.csv",
                    "size": 2048576,
                    "columns": ["date", "sales", "region"],
                    "rows_count": 10000,
                    "detected_types": {"date": "datetime", "sales": "numeric", "region": "categorical"},
                    "suggestions": {"date_column": "date", "target_column": "sales", "numeric_columns": ["sales"], "series_id_column": "region"},
                    "frequency": "D",
                    "kind": "tabular",
                }
            ]
        }
    )

    dataset_id: uuid.UUID
    filename: str
    size: int
    columns: list[str]
    rows_count: int
    detected_types: dict[str, str]
    suggestions: dict[str, Any]
    frequency: str | None
    kind: str = "tabular"


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    name: str
    description: str | None
    filename: str | None
    file_format: str | None
    size_bytes: int
    stored_bytes: int
    rows_count: int
    columns: list[str]
    detected_types: dict[str, str]
    suggestions: dict[str, Any]
    frequency: str | None
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PreviewResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "page": 1,
                    "limit": 2,
                    "total_rows": 10000,
                    "total_pages": 5000,
                    "columns": ["date", "sales"],
                    "rows": [{"date": "2026-01-01T00:00:00", "sales": 120.5}, {"date": "2026-01-02T00:00:00", "sales": 98.0}],
                }
            ]
        }
    )

    dataset_id: uuid.UUID
    page: int
    limit: int
    total_rows: int
    total_pages: int
    columns: list[str]
    rows: list[dict[str, Any]]


class DatasetConfig(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "date_column": "date",
                    "target_column": "sales",
                    "feature_columns": ["price", "promo"],
                    "exclude_columns": ["notes"],
                    "series_id_column": "store",
                }
            ]
        },
    )

    date_column: str | None = Field(default=None, max_length=255)
    target_column: str | None = Field(default=None, max_length=255)
    feature_columns: list[str] | None = Field(default=None, max_length=1000)
    exclude_columns: list[str] | None = Field(default=None, max_length=1000)
    series_id_column: str | None = Field(default=None, max_length=255)


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"horizon": 24, "season_length": 24}]})

    horizon: StrictInt = Field(default=1, ge=1, le=10_000)
    season_length: StrictInt = Field(default=1, ge=1, le=10_000)


class ValidationIssue(BaseModel):
    code: str
    message: str
    column: str | None
    rows: list[int] | None = None
    series: list[str] | None = None
    count: int | None = None


class ValidationReport(BaseModel):
    valid: bool
    errors: list[ValidationIssue]
    warnings: list[ValidationIssue]


class DatasetSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    name: str
    rows_count: int
    stored_bytes: int
    created_at: datetime
    updated_at: datetime


class UsageResponse(BaseModel):
    stored_bytes: int
    datasets_count: int
    by_kind: dict[str, int]
    recent_uploads: list[DatasetSummary]
    recent_updates: list[DatasetSummary]


class SplitRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"train_size": 0.7, "validation_size": 0.15, "test_size": 0.15, "method": "time_series", "shuffle": False}]},
    )

    train_size: float = Field(gt=0, lt=1)
    validation_size: float = Field(default=0.0, ge=0, lt=1)
    test_size: float = Field(gt=0, lt=1)
    method: Literal["time_series", "random"] = "time_series"
    shuffle: StrictBool = False
    seed: StrictInt = Field(default=42, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _parts_make_a_whole(self) -> SplitRequest:
        total = self.train_size + self.validation_size + self.test_size
        if abs(total - 1) > 1e-6:
            raise ValueError(f"train_size + validation_size + test_size must be 1, not {total:g}")
        if self.method == "time_series" and self.shuffle:
            raise ValueError("a time_series split keeps the order; use method 'random' to shuffle")
        return self


class SplitPart(BaseModel):
    rows: int
    start: datetime | None
    end: datetime | None


class SplitResponse(BaseModel):
    dataset_id: uuid.UUID
    method: str
    series_count: int
    parts: dict[str, SplitPart]
