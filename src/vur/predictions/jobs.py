"""The batch prediction job: a large batch runs in a worker process, its answers are
written as one JSON file that GET /api/v1/predictions/batch/{job_id} serves."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic_core import to_json

from vur.core.db import get_database
from vur.core.storage import LocalArtifactStore
from vur.jobs.registry import job
from vur.jobs.runner import JobContext
from vur.predictions import service
from vur.predictions.exceptions import InvalidPredictionRequest
from vur.predictions.schemas import PredictRequest

BATCH_JOB = "predictions.batch"


def batch_result_key(workspace_id: uuid.UUID, job_id: uuid.UUID) -> str:
    return f"predictions/{workspace_id.hex}/{job_id.hex}.json"


@job(BATCH_JOB, retry_safe=False)
def predict_batch(ctx: JobContext, model_id: str, workspace_id: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    database = get_database(ctx.settings.resolved_database_url)
    store = LocalArtifactStore(ctx.settings.artifacts_dir)
    answers = []
    for done, request in enumerate(requests, start=1):
        body = PredictRequest.model_validate(request)
        with database.session() as session:
            model, version = service.servable_model(session, uuid.UUID(model_id), uuid.UUID(workspace_id), body.version)
            try:
                answers.append(service.compute(store, model, version, body, "batch"))
            except InvalidPredictionRequest as exc:  # what only forecasting finds out (a forecast that is not finite, say)
                failed = service.in_batch(done - 1, exc)
                raise ValueError(f"{failed.message} {failed.details}") from exc
        if done % 50 == 0 or done == len(requests):
            ctx.progress(100 * done / len(requests), f"{done}/{len(requests)} predictions")
    # All or nothing: the answers are recorded (and counted) in one transaction once all
    # are made, so a batch that fails part-way leaves no predictions behind.
    key = batch_result_key(uuid.UUID(workspace_id), ctx.job_id)
    with database.session() as session:
        results = [service.record(session, answer) for answer in answers]
        # As the single forecasts' answers are written: a bound no series had is null (json.dumps would write NaN, which is not JSON).
        store.write_bytes(key, to_json({"model_id": model_id, "results": results}, inf_nan_mode="null"))
    return {"result_key": key, "predictions": len(results)}
