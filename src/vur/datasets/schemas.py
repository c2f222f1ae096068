from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    rows_count: int
    columns: list[str]
    detected_types: dict[str, str]
    suggestions: dict[str, Any]
    frequency: str | None
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class DatasetUploadForm(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
