from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from vur.core.db import MAX_DB_INT, naive_utc

MAX_OBSERVATIONS = 10_000  # the request body limit (1 MiB by default) binds first
# The largest value taken: forecasts from it, and the squares of its errors summed over
# many predictions, stay finite (1e308 observed made a forecast of infinity).
MAX_MAGNITUDE = 1e100
# A batch up to this many requests is answered in the response; a larger one is a job.
DIRECT_BATCH = 20
MAX_BATCH = 5_000
# The days inside pandas' datetime64[ns] range, in which the forecasting libraries hold
# times: one outside it would wrap around to a time centuries away.
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)


def _forecastable(moment: datetime) -> datetime:
    if not EARLIEST <= (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, the range of the forecasting libraries' timestamps")
    return moment


Timestamp = Annotated[datetime, AfterValidator(_forecastable)]


class Observation(BaseModel):
    """A value observed after (or at the end of) the model's training history."""

    model_config = ConfigDict(extra="forbid")

    series_id: str | None = Field(default=None, min_length=1, max_length=255, description="Omit for a model trained on one series")
    timestamp: Timestamp
    value: StrictFloat | StrictInt

    @field_validator("value")
    @classmethod
    def finite(cls, value: float) -> float:
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise ValueError(f"must be a finite number of magnitude at most {MAX_MAGNITUDE:g}")
        return value


class FutureValues(BaseModel):
    """The exogenous columns' values at one forecast timestamp of one series."""

    model_config = ConfigDict(extra="forbid")

    series_id: str | None = Field(default=None, min_length=1, max_length=255, description="Omit for a model trained on one series")
    timestamp: Timestamp
    values: dict[str, StrictFloat | StrictInt] = Field(min_length=1, max_length=100, description="Column name to value")

    @field_validator("values")
    @classmethod
    def finite(cls, values: dict[str, float]) -> dict[str, float]:
        if not all(math.isfinite(v) and abs(v) <= MAX_MAGNITUDE for v in values.values()):
            raise ValueError(f"every value must be a finite number of magnitude at most {MAX_MAGNITUDE:g}")
        return values


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"horizon": 24, "levels": [80, 95]},
                {"horizon": 6, "series_ids": ["H1"], "observations": [{"series_id": "H1", "timestamp": "2026-01-10T01:00:00Z", "value": 612.0}]},
                {"horizon": 2, "exogenous": [{"timestamp": "2026-01-10T01:00:00Z", "values": {"price": 3.5}}, {"timestamp": "2026-01-10T02:00:00Z", "values": {"price": 3.4}}]},
            ]
        },
    )

    horizon: StrictInt = Field(ge=1, le=10_000, description="Steps ahead; at most the horizon the model was trained for")
    levels: list[StrictInt] | None = Field(default=None, max_length=10, description="Interval levels, among the model's; default all of them")
    series_ids: list[str] | None = Field(default=None, min_length=1, max_length=10_000, description="Which series; default all")
    observations: list[Observation] | None = Field(
        default=None, max_length=MAX_OBSERVATIONS, description="Newer values: the forecast starts after the latest one, from the fitted model"
    )
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_DB_INT, description="Model version; default the latest")
    exogenous: list[FutureValues] | None = Field(
        default=None,
        max_length=MAX_OBSERVATIONS,
        description="Future values of the exogenous columns of a model trained with them, at each step to forecast (of each series asked for)",
    )

    @field_validator("observations", "exogenous")
    @classmethod
    def once_each(cls, rows: list[Any] | None) -> list[Any] | None:
        """Two values of a series at one timestamp are ambiguous (which is meant?): refused."""
        seen: set[tuple[str | None, datetime]] = set()
        for row in rows or []:
            key = (row.series_id, naive_utc(row.timestamp))
            if key in seen:
                raise ValueError(f"{f'series {row.series_id!r}' if row.series_id else 'the series'} is given twice at {key[1].isoformat()}")
            seen.add(key)
        return rows


class ModelPredictRequest(PredictRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model_id": "7c0e6a4e-1f0b-4a53-9d55-3f1f7a0e2b11", "horizon": 24}]})

    model_id: uuid.UUID


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model_id": "7c0e6a4e-1f0b-4a53-9d55-3f1f7a0e2b11", "requests": [{"horizon": 24, "series_ids": ["H1"]}, {"horizon": 12}]}]},
    )

    model_id: uuid.UUID
    requests: list[PredictRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchUpload(BaseModel):
    """The form fields of a batch sent as a CSV of observations (multipart, beside `file`)."""

    model_id: uuid.UUID
    horizon: int = Field(ge=1, le=10_000)


class PredictionPoint(BaseModel):
    series_id: str
    timestamp: datetime
    value: float
    lower: dict[str, float] = Field(default_factory=dict, description="Lower bound per interval level")
    upper: dict[str, float] = Field(default_factory=dict)


class PredictionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    model_id: uuid.UUID | None
    model_version: int
    source: str
    horizon: int
    series_count: int
    input_summary: dict[str, Any]
    latency_ms: float
    scored_points: int
    created_at: datetime


class PredictionResponse(BaseModel):
    prediction_id: uuid.UUID
    model_id: uuid.UUID
    model_version: int
    source: str
    horizon: int
    levels: list[int]
    predictions: list[PredictionPoint]
    latency_ms: float = Field(description="Time spent computing the forecast, in milliseconds")
    created_at: datetime


class BatchAccepted(BaseModel):
    job_id: uuid.UUID
    status: str
    requests: int


class BatchResponse(BaseModel):
    model_id: uuid.UUID
    results: list[PredictionResponse]


class DatabaseCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "plant sensors",
                    "url": "postgresql://reader:secret@db.internal:5432/plant",
                    "table_name": "readings",
                    "timestamp_column": "measured_at",
                    "value_column": "load_kw",
                    "series_column": "meter_id",
                },
                {
                    "name": "store sales with planned prices",
                    "url": "mysql://reader:secret@db.internal:3306/retail",
                    "query": "SELECT day, store, units, price FROM sales_plan",
                    "timestamp_column": "day",
                    "value_column": "units",
                    "series_column": "store",
                    "exogenous_columns": ["price"],
                },
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000, description="SQLAlchemy URL: postgresql://, mysql:// or sqlite:/// (a file in the workspace's folder of the sources folder)")
    table_name: str | None = Field(default=None, max_length=127)
    query: str | None = Field(default=None, max_length=10_000, description="One SELECT, instead of a table")
    timestamp_column: str = Field(min_length=1, max_length=63)
    value_column: str = Field(min_length=1, max_length=63)
    series_column: str | None = Field(default=None, max_length=63)
    exogenous_columns: list[str] = Field(
        default=[],
        max_length=50,
        description="Columns a model fitted with exogenous variables reads: a stream takes their future values from the rows ahead whose value is still empty",
    )


class DatabaseRead(BaseModel):
    """A source as shown: never its URL or credentials."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    dialect: str
    host: str | None
    database: str | None
    table_name: str | None
    query: str | None
    timestamp_column: str
    value_column: str
    series_column: str | None
    exogenous_columns: list[str]
    status: str
    last_checked_at: datetime | None
    last_error: str | None
    created_at: datetime


class StreamStart(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"pipeline_id": None, "model_id": "7c0e6a4e-1f0b-4a53-9d55-3f1f7a0e2b11", "database_id": "0b8f3c1e-55aa-4c1e-9d3a-2f6b8e9a1c22", "interval_seconds": 2}]},
    )

    pipeline_id: uuid.UUID | None = None
    model_id: uuid.UUID
    database_id: uuid.UUID
    interval_seconds: StrictFloat | StrictInt = Field(ge=1, le=86_400, description="Seconds between reads, at least 1")
    horizon: StrictInt | None = Field(default=None, ge=1, le=10_000, description="Steps forecast at each read; default the model's horizon")


class StreamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    model_id: uuid.UUID
    database_id: uuid.UUID
    pipeline_id: uuid.UUID | None
    interval_seconds: float
    horizon: int
    status: str
    last_timestamp: datetime | None
    last_run_at: datetime | None
    last_new_rows_at: datetime | None
    rows_read: int
    predictions_made: int
    consecutive_failures: int
    last_error: str | None
    created_at: datetime
    stopped_at: datetime | None
