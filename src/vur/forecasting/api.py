from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Response

from vur.core.deps import DbSession, Store
from vur.forecasting import plots, service
from vur.forecasting.algorithms import catalogue_by_family
from vur.forecasting.schemas import CustomModelRequest, ForecastResponse, ModelConfigured, OptimizeRequest, TrainAccepted, TrainingStatus, TrainRequest
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.registry import service as registry

router = APIRouter(prefix="/api/v1/models", tags=["forecasting"])


@router.get("/algorithms", summary="The algorithm catalogue, grouped by family, with parameter schemas")
def list_algorithms(_: WorkspaceReader) -> dict[str, list[dict[str, Any]]]:
    return catalogue_by_family()


@router.post("/configure", response_model=ModelConfigured, status_code=201, summary="Configure a forecaster (status configured)")
def configure(body: TrainRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> ModelConfigured:
    model = service.configure(session, store, principal.workspace_id, principal.user_id, body)
    return ModelConfigured(model_id=model.id, status=model.status.value, algorithm=model.algorithm, hyperparameters=model.hyperparameters, config=model.config)


@router.post(
    "/custom",
    response_model=ModelConfigured,
    status_code=201,
    summary="Configure a neural network from a layer list (lstm, gru, dense, dropout), checked before anything runs",
)
def configure_custom(body: CustomModelRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> ModelConfigured:
    model = service.configure_custom(session, store, principal.workspace_id, principal.user_id, body)
    return ModelConfigured(model_id=model.id, status=model.status.value, algorithm=model.algorithm, hyperparameters=model.hyperparameters, config=model.config)


@router.post("/train", response_model=TrainAccepted, status_code=202, summary="Configure a forecaster and start training it")
def train(body: TrainRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> TrainAccepted:
    model = service.configure(session, store, principal.workspace_id, principal.user_id, body)
    job = service.start_training(session, model, principal.user_id)
    return TrainAccepted(model_id=model.id, job_id=job.id, status=job.status.value)


@router.post("/{model_id}/train", response_model=TrainAccepted, status_code=202, summary="Train (or retrain) a configured model")
def train_configured(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> TrainAccepted:
    model = registry.get_model(session, model_id, principal.workspace_id, for_update=True)
    job = service.start_training(session, model, principal.user_id)
    return TrainAccepted(model_id=model.id, job_id=job.id, status=job.status.value)


@router.post(
    "/{model_id}/optimize",
    response_model=TrainAccepted,
    status_code=202,
    summary="Tune the hyperparameters (Optuna: bayesian = TPE, random, grid) by backtest, then train with the best",
)
def optimize(model_id: uuid.UUID, body: OptimizeRequest, principal: WorkspaceWriter, session: DbSession) -> TrainAccepted:
    model = registry.get_model(session, model_id, principal.workspace_id, for_update=True)
    job = service.optimize(session, model, principal.user_id, body)
    return TrainAccepted(model_id=model.id, job_id=job.id, status=job.status.value)


@router.get("/{model_id}/training/status", response_model=TrainingStatus, summary="Progress, logs and metrics of the model's training")
def training_status(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> TrainingStatus:
    return service.training_status(session, registry.get_model(session, model_id, principal.workspace_id))


@router.post("/{model_id}/training/cancel", response_model=TrainingStatus, summary="Cancel the model's training (409 when it is not training)")
def cancel_training(model_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> TrainingStatus:
    model = registry.get_model(session, model_id, principal.workspace_id, for_update=True)
    service.cancel_training(session, model)
    return service.training_status(session, model)


@router.get("/{model_id}/forecast", response_model=ForecastResponse, summary="The forecast made at the end of training (409 for a model that needs future exogenous values)")
def forecast(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> ForecastResponse:
    return service.read_forecast(store, registry.get_model(session, model_id, principal.workspace_id))


@router.get("/{model_id}/metrics", summary="Validation metrics (the mean over the windows and each window's) and test metrics (null without a time_series split)")
def metrics(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> dict[str, Any]:
    model = registry.get_model(session, model_id, principal.workspace_id)
    results = service.read_results(store, model)
    return {"model_id": model.id, "algorithm": model.algorithm, "metrics": results["metrics"], "folds": results["folds"], "test_metrics": results["test_metrics"]}


@router.get("/{model_id}/results", summary="Metrics, forecast against actual with residuals (validation and test), fit time, versions and the forecast")
def results(model_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> dict[str, Any]:
    model = registry.get_model(session, model_id, principal.workspace_id)
    return {
        "model_id": model.id,
        "algorithm": model.algorithm,
        "hyperparameters": model.hyperparameters,
        "trained_at": model.trained_at,
        **service.read_results(store, model),
        "forecast": service.stored_forecast(store, model),
    }


@router.get(
    "/{model_id}/plot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "The chart"}},
    summary="A chart of the trained model: forecast with intervals, validation residuals, or feature importance",
)
def plot(
    model_id: uuid.UUID,
    principal: WorkspaceReader,
    session: DbSession,
    store: Store,
    kind: plots.PlotKind = "forecast",
    format: plots.PlotFormat = "png",
    series_id: str | None = Query(default=None, max_length=255, description="Which series (default: the first)"),
) -> Response:
    model = registry.get_model(session, model_id, principal.workspace_id)
    results, forecast = service.read_results(store, model), service.stored_forecast(store, model)
    image = plots.render(kind, results, forecast.model_dump(), series_id, format)
    return Response(image, media_type=plots.MEDIA_TYPES[format], headers={"Cache-Control": "private, max-age=60"})
