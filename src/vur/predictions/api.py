from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response

from vur.core.deps import DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.jobs import service as jobs
from vur.jobs.models import JobStatus
from vur.predictions import service
from vur.predictions.exceptions import BatchNotReady, PredictionNotFound
from vur.predictions.jobs import BATCH_JOB, batch_result_key
from vur.predictions.schemas import (
    DIRECT_BATCH,
    BatchAccepted,
    BatchRequest,
    BatchResponse,
    ModelPredictRequest,
    PredictionRead,
    PredictionResponse,
    PredictRequest,
)
from vur.registry.service import get_model

router = APIRouter(prefix="/api/v1/predictions", tags=["predictions"])
model_router = APIRouter(prefix="/api/v1/models", tags=["predictions"])

# Routes are plain functions: FastAPI runs them in its thread pool, so a forecast that
# takes a while does not hold the event loop.


@model_router.post("/{model_id}/predict", response_model=PredictionResponse, summary="Forecast with a trained model (its latest version unless `version` says)")
def predict_with_model(model_id: uuid.UUID, body: PredictRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> PredictionResponse:
    return service.predict(session, store, get_model(session, model_id, principal.workspace_id), body, "api")


@router.post("/predict", response_model=PredictionResponse, summary="Forecast with a trained model named in the body")
def predict(body: ModelPredictRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> PredictionResponse:
    return service.predict(session, store, get_model(session, body.model_id, principal.workspace_id), body, "api")


@router.post("/real-time", response_model=PredictionResponse, summary="Forecast and push the answer to the `predictions` WebSocket topic")
def predict_real_time(body: ModelPredictRequest, principal: WorkspaceWriter, session: DbSession, store: Store) -> PredictionResponse:
    return service.predict(session, store, get_model(session, body.model_id, principal.workspace_id), body, "real_time")


@router.post(
    "/batch",
    response_model=BatchResponse | BatchAccepted,
    summary=f"Several forecasts with one model: up to {DIRECT_BATCH} answered here, more become a job (202) whose result GET /predictions/batch/{{job_id}} serves",
    responses={202: {"model": BatchAccepted, "description": "A job runs the batch"}},
)
def predict_batch(body: BatchRequest, principal: WorkspaceWriter, session: DbSession, store: Store, response: Response) -> BatchResponse | BatchAccepted:
    model = get_model(session, body.model_id, principal.workspace_id)
    service.servable_version(session, model, None)  # refuse an untrained model now, not in the job
    if len(body.requests) <= DIRECT_BATCH:
        return BatchResponse(model_id=model.id, results=[service.predict(session, store, model, request, "batch") for request in body.requests])
    payload = {"model_id": str(model.id), "workspace_id": str(principal.workspace_id), "requests": [r.model_dump(mode="json") for r in body.requests]}
    job = jobs.enqueue(session, BATCH_JOB, payload, workspace_id=principal.workspace_id, created_by=principal.user_id)
    response.status_code = 202
    return BatchAccepted(job_id=job.id, status=job.status.value, requests=len(body.requests))


@router.get("/batch/{job_id}", summary="The answers of a batch job, once it has succeeded (409 before)")
def batch_result(job_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> Response:
    job = jobs.get_job(session, job_id, principal.workspace_id)
    if job.type != BATCH_JOB:
        raise PredictionNotFound(f"Job '{job_id}' is not a batch prediction", {"job_id": "not a batch prediction job"})
    if job.status != JobStatus.succeeded:
        raise BatchNotReady(f"The batch is {job.status.value}", {"status": job.status.value, "error": job.error})
    with store.open(batch_result_key(principal.workspace_id, job.id)) as handle:
        return Response(handle.read(), media_type="application/json")


@router.get("", response_model=list[PredictionRead], summary="Predictions of the workspace, newest first (filters: model, source, time range)")
def list_predictions(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    model_id: uuid.UUID | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[PredictionRead]:
    rows, total = service.list_predictions(session, principal.workspace_id, model_id=model_id, source=source, since=since, until=until, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [PredictionRead.model_validate(row) for row in rows]


@router.get("/history", summary="Predictions with what they answered (and the actual values that have arrived since), newest first")
def history(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    model_id: uuid.UUID | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    rows, total = service.list_predictions(session, principal.workspace_id, model_id=model_id, source=source, since=since, until=until, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [{**PredictionRead.model_validate(row).model_dump(mode="json"), "predictions": row.outputs} for row in rows]


@router.get("/stats", summary="Counts by source, latency percentiles and the error against actual values, overall and per model")
def stats(principal: WorkspaceReader, session: DbSession, model_id: uuid.UUID | None = None, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    return service.statistics(session, principal.workspace_id, model_id=model_id, since=since, until=until)


@router.get("/{prediction_id}", summary="One prediction with its answer")
def get_prediction(prediction_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> dict[str, Any]:
    row = service.get_prediction(session, prediction_id, principal.workspace_id)
    return {**PredictionRead.model_validate(row).model_dump(mode="json"), "predictions": row.outputs}
