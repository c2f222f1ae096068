from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_json
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.types import Receive, Scope, Send

from vur.core import foreground
from vur.core.db import Database
from vur.core.deps import DEFERRED_WAIT_SECONDS, AppSettings, DbSession, Store
from vur.core.errors import PayloadTooLarge, UnprocessableEntity, validation_details
from vur.core.pagination import PageParams, set_total
from vur.core.storage import ArtifactStore
from vur.identity.auth import WorkspaceReader, WorkspaceWriter, oauth2_scheme, require_writer
from vur.jobs import service as jobs
from vur.jobs.models import JobStatus
from vur.predictions import service, streams
from vur.predictions.exceptions import BatchNotReady, InvalidPredictionRequest, PredictionNotFound
from vur.predictions.jobs import BATCH_JOB, batch_result_key
from vur.predictions.models import Prediction
from vur.predictions.schemas import (
    DIRECT_BATCH,
    BatchAccepted,
    BatchRequest,
    BatchResponse,
    BatchUpload,
    DatabaseCreate,
    DatabaseRead,
    ModelPredictRequest,
    PredictionRead,
    PredictionResponse,
    PredictRequest,
    StreamRead,
    StreamStart,
)
from vur.registry.models import RegisteredModel
from vur.registry.service import get_model

router = APIRouter(prefix="/api/v1/predictions", tags=["predictions"])
# Files: this router gets the upload size limit (for multipart bodies).
upload_router = APIRouter(prefix="/api/v1/predictions", tags=["predictions"])

# Routes are plain functions: FastAPI runs them in its thread pool, so a forecast that
# takes a while does not hold the event loop. The single forecasts are coroutines that
# make one hop for their lookup and forecast instead of one per dependency: at these
# latencies the hops are a good part of the cost. Their hops go to a pool of a few
# threads of their own: under load, dozens of threads in FastAPI's pool (40) would
# contend for the GIL and for the database connections (five pooled; each one more is
# opened and closed per request). Queued on the event loop instead, a request waits at no cost.
_FORECAST_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vur-forecast")


def _answer(
    database: Database, store: ArtifactStore, jobs_epoch: int | None, workspace_id: uuid.UUID, model_id: uuid.UUID, body: PredictRequest, source: str
) -> tuple[bytes, service.Computed]:
    """The answer's JSON and what is to be recorded of it. Nothing here writes."""
    model, version = service.served_model(database, model_id, workspace_id, body.version, jobs_epoch)
    computed = service.compute(store, model, version, body, source)
    # Written as it was made (a PredictionResponse's JSON): FastAPI would validate it
    # against the response model and dump it again. A bound no series had is null.
    return to_json(computed.response, inf_nan_mode="null"), computed


async def _predict_in_thread(request: Request, workspace_id: uuid.UUID, model_id: uuid.UUID, body: PredictRequest, source: str) -> Response:
    # The app's database and store are read off the request rather than declared as the
    # routes' dependencies: FastAPI's solving of the two cost a forecast 0.15 ms.
    # In the request's context, so that its logs keep the request id.
    database = request.app.state.database
    if not database.deferred.has_room():
        await asyncio.to_thread(database.deferred.wait_for_room, DEFERRED_WAIT_SECONDS)
    worker = request.app.state.worker
    jobs_epoch = worker.idle_epoch if worker is not None else 0
    work = partial(contextvars.copy_context().run, _answer, database, request.app.state.store, jobs_epoch, workspace_id, model_id, body, source)
    foreground.begin()  # background checks wait until the answer is out (`_Answer`)
    try:
        answer, computed = await asyncio.get_running_loop().run_in_executor(_FORECAST_THREADS, work)
    except BaseException:
        foreground.end()
        raise
    # Recorded once the answer is sent, by this process's deferred writer: its transaction
    # (scoring the observations, the insert, the commit) would hold the answer up by a
    # millisecond and a half. Reads made after it wait for it (`vur.core.deferred`).
    return _Answer(answer, media_type="application/json", background=BackgroundTask(_record_later, database, computed))


class _Answer(Response):
    """A forecast's answer: the forecast counts as being answered until it is sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            foreground.end()


async def _record_later(database: Database, computed: service.Computed) -> None:
    database.deferred.submit("prediction", partial(service.record, computed=computed))


class ForecastRoute(APIRoute):
    """A forecast route that reads a request FastAPI would accept (a JSON body that
    validates, ids that parse) in one pass: the body validated straight from its bytes,
    the writer's check called directly. FastAPI's handling of the same request (the body
    parsed as JSON, then validated, the dependencies solved one by one) cost a forecast
    0.9 ms in a server. Any other request, an error in it included, is handed to FastAPI's
    handler, so it is answered exactly as on every other route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        read = _OnePassRead.of(self.dependant)
        endpoint = self.dependant.call

        async def handler(request: Request) -> Response:
            arguments = await read(request)
            return await endpoint(**arguments) if arguments is not None else await standard(request)  # type: ignore[misc]

        return handler


_UUID = TypeAdapter(uuid.UUID)  # as FastAPI validates a path's id


@dataclass(frozen=True)
class _OnePassRead:
    """How a ForecastRoute's endpoint takes its arguments: a JSON body, ids in the path,
    the workspace writer, the request."""

    body: str
    model: type[BaseModel]
    ids: tuple[str, ...]
    principal: str
    request: str

    @classmethod
    def of(cls, dependant: Dependant) -> _OnePassRead:
        body, principals, request = dependant.body_params, dependant.dependencies, dependant.request_param_name
        others = dependant.query_params or dependant.header_params or dependant.cookie_params
        if len(body) != 1 or len(principals) != 1 or principals[0].call is not require_writer or request is None or others or any(p.field_info.annotation is not uuid.UUID for p in dependant.path_params):
            raise TypeError(f"{getattr(dependant.call, '__name__', dependant.call)} takes other arguments than a ForecastRoute reads")
        return cls(body[0].name, body[0].field_info.annotation, tuple(p.name for p in dependant.path_params), principals[0].name, request)  # type: ignore[arg-type]

    async def __call__(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's arguments, or None for FastAPI to read the request (and refuse it)."""
        if request.headers.get("content-type") != "application/json":
            return None
        try:
            body = self.model.model_validate_json(await request.body())
            ids = {name: _UUID.validate_python(request.path_params[name]) for name in self.ids}
        except ValidationError:
            return None
        principal = await require_writer(request, await oauth2_scheme(request))
        return {self.body: body, **ids, self.principal: principal, self.request: request}


# The forecasts' routes: POST /models/{id}/predict, /predictions/predict and /predictions/real-time.
model_router = APIRouter(prefix="/api/v1/models", tags=["predictions"], route_class=ForecastRoute)
forecast_router = APIRouter(prefix="/api/v1/predictions", tags=["predictions"], route_class=ForecastRoute)


@model_router.post("/{model_id}/predict", response_model=PredictionResponse, summary="Forecast with a trained model (its latest version unless `version` says)")
async def predict_with_model(model_id: uuid.UUID, body: PredictRequest, principal: WorkspaceWriter, request: Request) -> Response:
    return await _predict_in_thread(request, principal.workspace_id, model_id, body, "api")


@forecast_router.post("/predict", response_model=PredictionResponse, summary="Forecast with a trained model named in the body")
async def predict(body: ModelPredictRequest, principal: WorkspaceWriter, request: Request) -> Response:
    return await _predict_in_thread(request, principal.workspace_id, body.model_id, body, "api")


@forecast_router.post("/real-time", response_model=PredictionResponse, summary="Forecast and push the answer to the `predictions` WebSocket topic")
async def predict_real_time(body: ModelPredictRequest, principal: WorkspaceWriter, request: Request) -> Response:
    return await _predict_in_thread(request, principal.workspace_id, body.model_id, body, "real_time")


def _batch_request_schema() -> dict[str, Any]:
    """BatchRequest's schema with its models referred to as the document's components
    (the routes' bodies already make them so), not as pydantic's local "#/$defs/..."."""
    schema = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _batch_request_schema(), "example": BatchRequest.model_config["json_schema_extra"]["examples"][0]},  # type: ignore[index]
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model_id", "horizon"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "CSV: timestamp,value[,series_id][,one column per exogenous variable of the model]"},
                        "model_id": {"type": "string", "format": "uuid"},
                        "horizon": {"type": "integer", "minimum": 1, "maximum": 10_000},
                    },
                }
            },
        },
    }
}


async def batch_body(request: Request, settings: AppSettings) -> BatchRequest | tuple[BatchUpload, bytes]:
    """JSON requests, or a CSV of observations with the model and horizon as form fields."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            return BatchRequest.model_validate_json(await request.body())
        except ValidationError as exc:  # answered as FastAPI answers a body it validated
            raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]) from exc
    form = await request.form(max_files=1, max_fields=10)  # a malformed one is Starlette's 400
    file = form.get("file")
    if not isinstance(file, StarletteUploadFile):
        raise UnprocessableEntity("Validation failed", {"file": "a CSV file of observations is required"})
    try:
        fields = BatchUpload.model_validate({name: form.get(name) for name in BatchUpload.model_fields})
    except ValidationError as exc:
        raise UnprocessableEntity("Validation failed", validation_details(exc.errors(include_url=False))) from exc
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"File exceeds the limit of {settings.max_upload_bytes} bytes", {"max_bytes": settings.max_upload_bytes})
    return fields, data


@upload_router.post(
    "/batch",
    response_model=BatchResponse | BatchAccepted,
    summary=f"Several forecasts with one model: JSON requests, or a CSV of observations (multipart `file`, `model_id`, `horizon`: one forecast per series from its "
    f"newest value). Up to {DIRECT_BATCH} are answered here, more become a job (202) whose result GET /predictions/batch/{{batch_id}} serves",
    responses={202: {"model": BatchAccepted, "description": "A job runs the batch"}},
    openapi_extra=_BATCH_BODY,
)
def predict_batch(
    principal: WorkspaceWriter,  # first: a caller who may not is refused before the body is read
    body: Annotated[BatchRequest | tuple[BatchUpload, bytes], Depends(batch_body)],
    session: DbSession,
    store: Store,
    response: Response,
) -> BatchResponse | BatchAccepted:
    if isinstance(body, BatchRequest):
        return _batch(session, store, principal, get_model(session, body.model_id, principal.workspace_id), body.requests, response)
    fields, data = body
    model = get_model(session, fields.model_id, principal.workspace_id)
    return _batch(session, store, principal, model, service.requests_from_csv(data, fields.horizon, model.config.get("exogenous") or []), response)


def _batch(session: DbSession, store: Store, principal: WorkspaceWriter, model: RegisteredModel, requests: list[PredictRequest], response: Response) -> BatchResponse | BatchAccepted:
    versions: dict[int | None, service.ServedVersion] = {None: service.servable_version(session, model, None)}  # refuse an untrained model now, not in the job
    direct = len(requests) <= DIRECT_BATCH
    results = []
    for index, request in enumerate(requests):
        try:
            if request.version not in versions:
                versions[request.version] = service.servable_version(session, model, request.version)
            if direct:
                results.append(service.predict_with(session, store, model, versions[request.version], request, "batch"))
            else:  # what can be refused now is refused now, not by a failed job
                service.check_request(store, model, versions[request.version], request)
        except InvalidPredictionRequest as exc:
            raise service.in_batch(index, exc) from exc
    if direct:
        return BatchResponse(model_id=model.id, results=results)
    payload = {"model_id": str(model.id), "workspace_id": str(principal.workspace_id), "requests": [r.model_dump(mode="json") for r in requests]}
    job = jobs.enqueue(session, BATCH_JOB, payload, workspace_id=principal.workspace_id, created_by=principal.user_id)
    response.status_code = 202
    return BatchAccepted(job_id=job.id, status=job.status.value, requests=len(requests))


@router.get("/batch/{batch_id}", summary="The answers of a batch job (`batch_id` is the job id POST /batch answered), once it has succeeded (409 before)")
def batch_result(batch_id: uuid.UUID, principal: WorkspaceReader, session: DbSession, store: Store) -> Response:
    job = jobs.get_job(session, batch_id, principal.workspace_id)
    if job.type != BATCH_JOB:
        raise PredictionNotFound(f"Job '{batch_id}' is not a batch prediction")
    if job.status != JobStatus.succeeded:
        raise BatchNotReady(f"The batch is {job.status.value}", {"status": job.status.value, "error": job.error})
    with store.open(batch_result_key(principal.workspace_id, job.id)) as handle:
        return Response(handle.read(), media_type="application/json")


@dataclass(frozen=True)
class Filters:
    model_id: uuid.UUID | None = None
    source: Literal["api", "batch", "real_time", "stream"] | None = Query(default=None, description="Where the predictions came from")
    since: datetime | None = None
    until: datetime | None = None


FilterParams = Annotated[Filters, Depends()]


def _page_of(session: DbSession, principal: WorkspaceReader, response: Response, page: PageParams, filters: Filters) -> list[Prediction]:
    rows, total = service.list_predictions(session, principal.workspace_id, **asdict(filters), limit=page.limit, offset=page.offset)
    set_total(response, total)
    return rows


@router.get("", response_model=list[PredictionRead], summary="Predictions of the workspace, newest first (filters: model, source, time range)")
def list_predictions(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, filters: FilterParams) -> list[PredictionRead]:
    return [PredictionRead.model_validate(row) for row in _page_of(session, principal, response, page, filters)]


@router.get("/history", summary="Predictions with what they answered (and the actual values that have arrived since), newest first")
def history(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, filters: FilterParams) -> list[dict[str, Any]]:
    return [{**PredictionRead.model_validate(row).model_dump(mode="json"), "predictions": row.outputs} for row in _page_of(session, principal, response, page, filters)]


@router.get("/stats", summary="Counts by source, latency percentiles and the error against actual values, overall and per model")
def stats(principal: WorkspaceReader, session: DbSession, model_id: uuid.UUID | None = None, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    return service.statistics(session, principal.workspace_id, model_id=model_id, since=since, until=until)


@router.get("/{prediction_id}", summary="One prediction with its answer")
def get_prediction(prediction_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> dict[str, Any]:
    row = service.get_prediction(session, prediction_id, principal.workspace_id)
    return {**PredictionRead.model_validate(row).model_dump(mode="json"), "predictions": row.outputs}


# --- database connections and streams (seed 6.3, 6.4) ---------------------------------

monitoring_router = APIRouter(prefix="/api/v1/monitoring", tags=["predictions"])


@monitoring_router.post("/databases", response_model=DatabaseRead, status_code=201, summary="Register an external SQL source (its URL is stored encrypted and never shown)")
def create_database(body: DatabaseCreate, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> DatabaseRead:
    return DatabaseRead.model_validate(streams.create_connection(session, settings, principal.workspace_id, body))


@monitoring_router.get("/databases", response_model=list[DatabaseRead], summary="The workspace's SQL sources")
def list_databases(principal: WorkspaceReader, session: DbSession) -> list[DatabaseRead]:
    return [DatabaseRead.model_validate(c) for c in streams.list_connections(session, principal.workspace_id)]


@monitoring_router.get("/databases/{database_id}", response_model=DatabaseRead, summary="One SQL source and its last connection test")
def get_database(database_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> DatabaseRead:
    return DatabaseRead.model_validate(streams.get_connection(session, database_id, principal.workspace_id))


@monitoring_router.post("/databases/{database_id}/test", response_model=DatabaseRead, summary="Connect read-only, read one row of the named columns, record the outcome")
def test_database(database_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> DatabaseRead:
    connection = streams.get_connection(session, database_id, principal.workspace_id)
    return DatabaseRead.model_validate(streams.check_connection(session, settings, connection))


@monitoring_router.delete("/databases/{database_id}", status_code=204, summary="Forget a source (its streams stop and go with it)")
def delete_database(database_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> None:
    session.delete(streams.get_connection(session, database_id, principal.workspace_id))


@monitoring_router.post("/predictions/start", response_model=StreamRead, status_code=201, summary="Start predicting from a source's new rows every interval_seconds")
def start_stream(body: StreamStart, principal: WorkspaceWriter, session: DbSession) -> StreamRead:
    return StreamRead.model_validate(streams.start_stream(session, principal.workspace_id, principal.user_id, body))


@monitoring_router.get("/predictions", response_model=list[StreamRead], summary="The workspace's prediction streams")
def list_streams(principal: WorkspaceReader, session: DbSession, status: Literal["running", "stopped", "failed"] | None = None) -> list[StreamRead]:
    return [StreamRead.model_validate(s) for s in streams.list_streams(session, principal.workspace_id, status)]


@monitoring_router.get("/predictions/{stream_id}", response_model=StreamRead, summary="A stream's status: cursor, rows read, predictions made, last error")
def get_stream(stream_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> StreamRead:
    return StreamRead.model_validate(streams.get_stream(session, stream_id, principal.workspace_id))


@monitoring_router.post("/predictions/{stream_id}/stop", response_model=StreamRead, summary="Stop a running stream (409 when it is not running)")
def stop_stream(stream_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> StreamRead:
    return StreamRead.model_validate(streams.stop_stream(session, streams.get_stream(session, stream_id, principal.workspace_id)))
