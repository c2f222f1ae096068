from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationInfo, field_validator

METRICS = ("rmse", "mae", "mape", "smape", "mase", "r2")


class ValidationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # time_series_split: n_splits rolling windows of one horizon each, at the end of the
    # history; holdout: the last horizon only.
    method: Literal["time_series_split", "holdout"] = "time_series_split"
    n_splits: StrictInt = Field(default=3, ge=1, le=20)


class SearchDimension(BaseModel):
    """One parameter's range in a search: `choices`, or `min`..`max` (on a log scale
    when `log`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "choice", "bool"]
    min: StrictInt | StrictFloat | None = None
    max: StrictInt | StrictFloat | None = None
    choices: list[StrictInt | StrictFloat | StrictBool | str] | None = Field(default=None, min_length=1, max_length=100)
    log: StrictBool = False


class OptimizationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False
    method: Literal["bayesian", "random", "grid"] = "bayesian"
    iterations: StrictInt = Field(default=50, ge=1, le=1000)
    # "val_rmse" is the seed's spelling of the validation rmse: both are accepted.
    metric: str = Field(default="rmse", max_length=20)
    # None: the metric's own direction (r2 is maximized, the errors minimized).
    objective: Literal["minimize", "maximize"] | None = None
    # None: the catalogue's default search space for the algorithm.
    search_space: dict[str, SearchDimension] | None = Field(default=None, max_length=30)


class OptimizeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "method": "bayesian",
                    "iterations": 30,
                    "search_space": {
                        "learning_rate": {"type": "float", "min": 0.01, "max": 0.3, "log": True},
                        "num_leaves": {"type": "int", "choices": [15, 31, 63]},
                        "n_estimators": {"type": "int", "min": 50, "max": 400},
                    },
                    "objective": "minimize",
                    "metric": "val_rmse",
                }
            ]
        },
    )

    method: Literal["bayesian", "random", "grid"] = "bayesian"
    iterations: StrictInt = Field(default=50, ge=1, le=1000)
    search_space: dict[str, SearchDimension] | None = Field(default=None, max_length=30)
    # None: the metric's own direction (r2 is maximized, the errors minimized).
    objective: Literal["minimize", "maximize"] | None = None
    metric: str = Field(default="rmse", max_length=20)


class ForecastRequest(BaseModel):
    """What every way of creating a forecaster asks: the data, the horizon, the
    intervals, the validation, and the columns when the dataset's own config is not
    to be used."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: uuid.UUID
    # Strict: "12" is a client bug worth reporting, not a number to guess.
    horizon: StrictInt = Field(default=24, ge=1, le=10_000)
    levels: list[StrictInt] = Field(default_factory=lambda: [80, 95], max_length=5)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    date_column: str | None = Field(default=None, max_length=255)
    target_column: str | None = Field(default=None, max_length=255)
    series_id_column: str | None = Field(default=None, max_length=255)
    # None: the dataset's feature_columns. Exogenous regressors of lightgbm, xgboost,
    # random_forest and linear (the numeric ones); other algorithms leave them aside.
    feature_columns: list[str] | None = Field(default=None, max_length=100)

    @field_validator("levels")
    @classmethod
    def _levels_in_range(cls, levels: list[int]) -> list[int]:
        if any(not 1 <= level <= 99 for level in levels):
            raise ValueError("each level must be between 1 and 99")
        return sorted(set(levels))


class TrainRequest(ForecastRequest):
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

    algorithm: str = Field(min_length=1, max_length=50)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    optimization: OptimizationSpec = Field(default_factory=OptimizationSpec)
    metrics: list[Literal[METRICS]] = Field(default_factory=lambda: list(METRICS), min_length=1, max_length=len(METRICS))  # type: ignore[valid-type]


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
    # A model with exogenous columns forecasts only from their future values: its
    # training leaves no forecast (see POST /models/{id}/predict, `exogenous`).
    exogenous: list[str] = Field(default_factory=list)


# Custom neural networks (seed 4.3). Each field is checked here on its own; the rules that
# tie layers together (which fields a layer type takes, the output layer, sequences between
# recurrent layers) are `architectures.check_architecture`, which names each field at fault.

LayerType = Literal["lstm", "gru", "dense", "dropout"]
Activation = Literal["relu", "tanh", "sigmoid", "linear", "elu", "selu", "gelu", "softplus", "swish"]
NETWORK_METRICS = ("mae", "mse", "mape", "rmse")


class LayerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: LayerType
    units: StrictInt | None = Field(default=None, ge=1, le=1024, description="Required for lstm, gru and dense layers")
    activation: Activation | None = Field(default=None, description="Default: tanh for lstm and gru, linear for dense")
    return_sequences: StrictBool | None = Field(default=None, description="lstm and gru only: pass every step on to the next layer")
    # strict: numbers only (ints included), never "0.2" or true.
    dropout: float | None = Field(default=None, ge=0, lt=1, strict=True, description="Input dropout of an lstm or gru layer; the rate of a dropout layer")


class ArchitectureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layers: list[LayerSpec] = Field(min_length=1, max_length=20)


class CompilationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["adam", "sgd", "rmsprop", "adamw"] = "adam"
    learning_rate: float | None = Field(default=None, ge=1e-6, le=1, strict=True, description="Default: the optimizer's own (0.001 for adam)")
    # The network learns standardised values, many near zero: a percentage loss explodes there.
    loss: Literal["mse", "mae", "huber", "log_cosh"] = "mse"
    # Computed after each epoch in the series' own units (see networks.forecast_with_network).
    metrics: list[Literal[NETWORK_METRICS]] = Field(default_factory=lambda: ["mae"], max_length=len(NETWORK_METRICS))  # type: ignore[valid-type]


class EarlyStoppingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = True
    patience: StrictInt = Field(default=10, ge=1, le=1000)
    monitor: Literal["val_loss", "loss"] = "val_loss"


class NetworkTrainingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: StrictInt = Field(default=100, ge=1, le=1000)
    batch_size: StrictInt = Field(default=32, ge=1, le=4096)
    validation_split: float = Field(default=0.2, ge=0, lt=0.9, strict=True, description="Share of each series' latest windows held out for val_loss")
    # validate_default: the default (val_loss) must meet the rule below too.
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec, validate_default=True)

    @field_validator("early_stopping")
    @classmethod
    def _val_loss_needs_validation(cls, early_stopping: EarlyStoppingSpec, info: ValidationInfo) -> EarlyStoppingSpec:
        if early_stopping.enabled and early_stopping.monitor == "val_loss" and info.data.get("validation_split") == 0:
            raise ValueError("monitoring val_loss needs a validation_split above 0; monitor 'loss' instead or hold out some windows")
        return early_stopping


class CustomModelRequest(ForecastRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "0b6f8a5e-2a51-4a4f-9a55-3d1c1f0e7b21",
                    "architecture": {
                        "layers": [
                            {"type": "lstm", "units": 50, "return_sequences": True, "dropout": 0.2},
                            {"type": "dense", "units": 25, "activation": "relu"},
                            {"type": "dense", "units": 1, "activation": "linear"},
                        ]
                    },
                    "compilation": {"optimizer": "adam", "loss": "mse", "metrics": ["mae", "mape"]},
                    "training": {
                        "epochs": 100,
                        "batch_size": 32,
                        "validation_split": 0.2,
                        "early_stopping": {"enabled": True, "patience": 10, "monitor": "val_loss"},
                    },
                    "horizon": 24,
                    "levels": [80, 95],
                }
            ]
        },
    )

    architecture: ArchitectureSpec
    compilation: CompilationSpec = Field(default_factory=CompilationSpec)
    training: NetworkTrainingSpec = Field(default_factory=NetworkTrainingSpec)
    # None: 2 x horizon, kept between 8 and 512 and short enough for the shortest series.
    input_size: StrictInt | None = Field(default=None, ge=2, le=5000, description="Past observations the network reads; default 2 x horizon")
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1, description="Random seed: the same seed trains the same network")
