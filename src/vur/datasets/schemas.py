from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator


class IngestWarning(BaseModel):
    """Cells of one column that the parse could not read, stored as missing."""

    column: str
    problem: str
    count: int
    rows: list[int] = Field(description="The first of them, as 1-based data rows (the header is not counted)")
    values: list[str] = Field(description="What those cells held")


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
                    "warnings": [
                        {
                            "column": "date",
                            "problem": "2 values are not timestamps in the column's format %Y-%m-%d: they are stored as missing",
                            "count": 2,
                            "rows": [4812, 9120],
                            "values": ["2026-02-30", "soon"],
                        }
                    ],
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
    warnings: list[IngestWarning] = []


class AppliedStep(BaseModel):
    """One preprocessing step as it was applied, with what it fitted on the data (fill
    values, bounds, scaler statistics, categories) so that it can be replayed or inverted."""

    step: str
    method: str | None = None
    columns: list[str] = []
    params: dict[str, Any] = {}


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
    warnings: list[IngestWarning] = Field(default=[], validation_alias="ingest_warnings")
    config: dict[str, Any]
    parent_id: uuid.UUID | None
    steps: list[AppliedStep]
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

    train_size: float = Field(gt=0, lt=1, strict=True)
    validation_size: float = Field(default=0.0, ge=0, lt=1, strict=True)
    test_size: float = Field(gt=0, lt=1, strict=True)
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


_SPLIT_EXAMPLE_PARTS = {
    "a": {
        "train": {"rows": 70, "start": "2026-01-01T00:00:00", "end": "2026-03-11T00:00:00"},
        "validation": {"rows": 15, "start": "2026-03-12T00:00:00", "end": "2026-03-26T00:00:00"},
        "test": {"rows": 15, "start": "2026-03-27T00:00:00", "end": "2026-04-10T00:00:00"},
    },
    "b": {
        "train": {"rows": 35, "start": "2026-02-05T00:00:00", "end": "2026-03-11T00:00:00"},
        "validation": {"rows": 7, "start": "2026-03-12T00:00:00", "end": "2026-03-18T00:00:00"},
        "test": {"rows": 8, "start": "2026-03-19T00:00:00", "end": "2026-03-26T00:00:00"},
    },
}


class SplitResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "method": "time_series",
                    "series_count": 2,
                    "parts": {
                        "train": {"rows": 105, "start": "2026-01-01T00:00:00", "end": "2026-03-11T00:00:00"},
                        "validation": {"rows": 22, "start": "2026-03-12T00:00:00", "end": "2026-03-26T00:00:00"},
                        "test": {"rows": 23, "start": "2026-03-19T00:00:00", "end": "2026-04-10T00:00:00"},
                    },
                    "series": _SPLIT_EXAMPLE_PARTS,
                    "series_truncated": False,
                }
            ]
        }
    )

    dataset_id: uuid.UUID
    method: str
    series_count: int
    parts: dict[str, SplitPart] = Field(description="Per part (train, validation, test): its rows over all series, and its first and last timestamp")
    series: dict[str, dict[str, SplitPart]] | None = Field(
        default=None,
        description=(
            "Per series id (as text; rows with no id are the series 'null'), its parts: only for a time_series split of a dataset with a "
            "series id column, and for its first 1000 series by id; null for a random split (its parts mix all series) or without a series column "
            "(`parts` are then the one series')"
        ),
    )
    series_truncated: bool = Field(default=False, description="Whether `series` leaves out series (there are more than 1000)")


# --- preprocessing -------------------------------------------------------------------

MAX_LAG = 10_000
MAX_WINDOW = 10_000


def _distinct(values: list[Any]) -> list[Any]:
    repeated = sorted(str(value) for value, count in Counter(values).items() if count > 1)
    if repeated:
        raise ValueError(f"listed more than once: {repeated}")
    return values


ColumnName = Annotated[str, Field(min_length=1, max_length=255)]
Columns = Annotated[list[ColumnName], Field(min_length=1, max_length=1000), AfterValidator(_distinct)]
Lag = Annotated[StrictInt, Field(ge=1, le=MAX_LAG)]
Window = Annotated[StrictInt, Field(ge=2, le=MAX_WINDOW)]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MissingValuesStep(_Step):
    method: Literal["forward_fill", "backward_fill", "interpolate", "mean", "median", "constant", "drop"]
    columns: Columns
    value: StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=1000)] | None = Field(default=None, description="The fill value of method 'constant'")

    @model_validator(mode="after")
    def _value_only_for_constant(self) -> MissingValuesStep:
        if self.method == "constant" and self.value is None:
            raise ValueError("method 'constant' needs a value")
        if self.method != "constant" and self.value is not None:
            raise ValueError(f"a value is only used by method 'constant', not '{self.method}'")
        return self


class OutliersStep(_Step):
    method: Literal["iqr", "zscore"]
    threshold: StrictFloat | None = Field(default=None, gt=0, le=100, description="IQR multiple (default 1.5) or standard deviations (default 3)")
    action: Literal["clip", "remove"] = "clip"
    columns: Columns


class NormalizationStep(_Step):
    method: Literal["minmax", "standard", "robust"]
    columns: Columns


class EncodingStep(_Step):
    method: Literal["one_hot", "ordinal"] = Field(description="one_hot: 0/1 columns <column>_<category> replace the column; ordinal: the category's rank in sorted order")
    columns: Columns


class LagFeatures(_Step):
    enabled: StrictBool = True
    lags: Annotated[list[Lag], Field(min_length=1, max_length=50, description="Steps back in each series: columns <column>_lag_<k>"), AfterValidator(_distinct)]
    columns: Columns | None = Field(default=None, description="Default: the target column")


class RollingFeatures(_Step):
    enabled: StrictBool = True
    windows: Annotated[
        list[Window], Field(min_length=1, max_length=20, description="Rows per window, over the previous rows only: columns <column>_rolling_<function>_<window>"), AfterValidator(_distinct)
    ]
    functions: Annotated[list[Literal["mean", "std", "min", "max"]], Field(min_length=1, max_length=4), AfterValidator(_distinct)] = ["mean"]
    columns: Columns | None = Field(default=None, description="Default: the target column")


class Differencing(_Step):
    enabled: StrictBool = True
    periods: Annotated[list[Lag], Field(min_length=1, max_length=10, description="x minus x k steps earlier: columns <column>_diff_<k>"), AfterValidator(_distinct)] = [1]
    columns: Columns | None = Field(default=None, description="Default: the target column")


class SeasonalFeatures(_Step):
    enabled: StrictBool = True
    extract: Annotated[
        list[Literal["month", "quarter", "day_of_week", "hour", "week_of_year"]],
        Field(min_length=1, max_length=5, description="Columns of those names; day_of_week and week_of_year are ISO (Monday is 1)"),
        AfterValidator(_distinct),
    ]


class HolidayFeatures(_Step):
    enabled: StrictBool = True
    country: str = Field(pattern=r"^[A-Z]{2,3}$", description="ISO 3166 code, as the `holidays` package knows it (BR, US, ...)")
    subdivision: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-]{1,10}$", description="A state or province of the country (SP, CA, ...)")


class FeatureEngineering(_Step):
    lag_features: LagFeatures | None = None
    rolling_features: RollingFeatures | None = None
    differencing: Differencing | None = None
    seasonal_features: SeasonalFeatures | None = None
    holiday_features: HolidayFeatures | None = None

    def enabled(self) -> dict[str, Any]:
        """The blocks that are given and enabled, by name."""
        return {name: block for name in type(self).model_fields if (block := getattr(self, name)) is not None and block.enabled}


class PreprocessRequest(BaseModel):
    """Steps run in this order: missing values, outliers, normalization, feature
    engineering, encoding. Time-based steps follow each series in date order; mean and
    median fills and outlier bounds are fitted per series, normalization over all rows."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "missing_values": {"method": "forward_fill", "columns": ["sales"]},
                    "outliers": {"method": "iqr", "threshold": 1.5, "columns": ["sales"]},
                    "normalization": {"method": "minmax", "columns": ["sales"]},
                    "feature_engineering": {
                        "lag_features": {"enabled": True, "lags": [1, 7, 30]},
                        "rolling_features": {"enabled": True, "windows": [7, 30], "functions": ["mean", "std"]},
                        "seasonal_features": {"enabled": True, "extract": ["month", "quarter", "day_of_week"]},
                    },
                }
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200, description="Default: the source's name + ' (preprocessed)'")
    description: str | None = Field(default=None, max_length=5000)
    date_column: ColumnName | None = Field(default=None, description="Orders time and feeds calendar features; default: the configured date column")
    missing_values: MissingValuesStep | None = None
    outliers: OutliersStep | None = None
    normalization: NormalizationStep | None = None
    feature_engineering: FeatureEngineering | None = None
    encoding: EncodingStep | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> PreprocessRequest:
        features = self.feature_engineering.enabled() if self.feature_engineering else {}
        if not (self.missing_values or self.outliers or self.normalization or self.encoding or features):
            raise ValueError("no preprocessing step is requested")
        return self


class PreprocessSummary(BaseModel):
    rows_before: int
    rows_after: int
    columns_added: list[str]
    columns_removed: list[str]


class PreprocessResponse(DatasetRead):
    summary: PreprocessSummary
