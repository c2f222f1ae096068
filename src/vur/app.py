"""create_app(): the FastAPI application with every domain router mounted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from vur import __version__
from vur.core import health, hub
from vur.core.db import Database, get_database
from vur.core.errors import error_response, install_error_handlers
from vur.core.events import bus
from vur.core.logging import configure_logging
from vur.core.metrics import register_job_collector
from vur.core.middleware import BodyLimitMiddleware, RequestContextMiddleware
from vur.core.migrations import ensure_up_to_date
from vur.core.outbox import OutboxRelay
from vur.core.redis_events import RedisPublisher, RedisRelay
from vur.core.storage import LocalArtifactStore
from vur.datasets import api as datasets_api
from vur.forecasting import api as forecasting_api
from vur.forge import api as forge_api
from vur.forge import instruction_api as forge_instruction_api
from vur.forge import training_api as forge_training_api
from vur.forge.finetune_poller import finetune_poller
from vur.identity import api as identity_api
from vur.identity.auth import principal_from_token
from vur.insights import api as insights_api
from vur.insights import compat_api as insights_compat_api
from vur.jobs import api as jobs_api
from vur.jobs.registry import load_job_modules
from vur.jobs.runner import Worker
from vur.jobs.service import count_by_status, job_in_workspace
from vur.monitoring import api as monitoring_api
from vur.monitoring.alerts import alert_evaluator
from vur.monitoring.system import SystemMetricsPublisher
from vur.pipelines import api as pipelines_api
from vur.predictions import api as predictions_api
from vur.predictions.scoring import scorer
from vur.predictions.streams import stream_scheduler
from vur.registry import api as registry_api
from vur.settings import Settings, get_settings
from vur.webhooks import api as webhooks_api
from vur.webhooks.dispatcher import webhook_dispatcher

TAGS = [
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "auth", "description": "Accounts, workspaces, access and refresh tokens."},
    {"name": "datasets", "description": "Tabular datasets: upload once, read as typed Parquet."},
    {"name": "forecasting", "description": "The algorithm catalogue, training runs and forecasts."},
    {"name": "models", "description": "The model registry."},
    {"name": "predictions", "description": "Forecasts from trained models, their history, statistics and batch jobs."},
    {"name": "jobs", "description": "Background work: status, progress, logs, cancellation."},
    {"name": "pipelines", "description": "The seven-step forecasting pipeline: steps, export/import, runs."},
    {"name": "monitoring", "description": "System metrics, component health, recent logs and live model figures."},
    {"name": "webhooks", "description": "Outgoing webhooks: signed POSTs to the workspace's URLs when events happen, their deliveries and attempts."},
    {"name": "forge", "description": "Dataset forge: domains, documents and their segments, generation templates, instruction datasets, their generation and review, provider keys."},
    {"name": "machines", "description": "Variable-impact analysis: machines, and the ranking of the variables that drive their target."},
    {"name": "machines (seed 003 paths)", "description": "Seed 003's machine paths with their integer ids, for its existing frontend."},
    {"name": "realtime", "description": "The WebSocket hub at /ws."},
]


def event_relay(settings: Settings, database: Database) -> OutboxRelay | RedisRelay:
    """What brings other processes' events to this one's WebSocket subscribers: Redis
    pub/sub when configured (and then this process's own events go through it too),
    else the outbox table that `vur worker` processes write."""
    if not settings.redis_url:
        return OutboxRelay(database)
    bus.forward_to(RedisPublisher(settings.redis_url))
    return RedisRelay(settings.redis_url)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json, settings.log_buffer_size)
    database = get_database(settings.resolved_database_url)
    # Job types must be known here too: enqueueing checks them, cancelling runs their hooks.
    load_job_modules(settings.job_modules)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_up_to_date(settings.resolved_database_url)

        def jobs_by_status() -> dict[str, int]:
            with database.session() as session:
                return count_by_status(session)

        register_job_collector(jobs_by_status)
        relay = event_relay(settings, database)
        relay.start()
        system_metrics = SystemMetricsPublisher(settings.data_dir, settings.system_metrics_interval_seconds)
        system_metrics.start()
        if settings.job_runner == "inprocess":
            # Its job processes' log records and counters come back to this process's ring and /metrics.
            app.state.worker = Worker(settings, forward_telemetry=True)
            app.state.worker.start_in_background()
        # The API process's own schedulers: prediction streams, alert checks, webhook deliveries,
        # fine-tuning jobs at their providers.
        schedulers = [stream_scheduler(database, app.state.store, settings)] if settings.stream_scheduler else []
        schedulers += [alert_evaluator(database, app.state.store, settings)] if settings.alert_check_seconds > 0 else []
        schedulers += [webhook_dispatcher(database, settings)] if settings.webhook_poll_seconds > 0 else []
        schedulers += [finetune_poller(database, app.state.store, settings)] if settings.forge_finetune_poll_seconds > 0 else []
        for scheduler in schedulers:
            scheduler.start()
        try:
            yield
        finally:
            for scheduler in schedulers:
                scheduler.stop()
            await asyncio.to_thread(database.deferred.wait, 10)  # answers already sent are still recorded
            await asyncio.to_thread(scorer.wait_idle, 10)  # and their observations still score
            await system_metrics.stop()
            relay.stop()
            if settings.redis_url:
                bus.forward_to(None)
            if app.state.worker is not None:
                app.state.worker.stop()

    app = FastAPI(
        title="VUR",
        version=__version__,
        description="Self-hosted machine-learning platform: datasets, forecasting, predictions and monitoring over one HTTP API.",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.store = LocalArtifactStore(settings.artifacts_dir)
    app.state.worker = None

    install_error_handlers(app)

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_: Request, __: IntegrityError) -> JSONResponse:
        return error_response(409, "The change conflicts with existing data", {})

    # Routers of file uploads: their routes get the upload body limit, all others the JSON one.
    upload_routers = (
        datasets_api.upload_router,
        registry_api.upload_router,
        predictions_api.upload_router,
        forge_api.upload_router,
        insights_api.upload_router,
        insights_compat_api.upload_router,
    )
    # Innermost of ours: its 413 gets the CORS headers and, outside it, the request id.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        # The multipart framing around a file of max_upload_bytes needs room too.
        upload_limit=settings.max_upload_bytes + 1_048_576,
        upload_paths=[route.path for router in upload_routers for route in router.routes],
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "X-Total-Count"],
    )
    app.add_middleware(RequestContextMiddleware)

    hub.set_authenticator(principal_from_token)
    hub.register_topic("job", job_in_workspace)
    app.include_router(hub.router)
    for router in (
        # First: the forecasts' routes (POST /models/{id}/predict, /predictions/predict and
        # /real-time, which no other route matches). FastAPI tries the routes in order, a few
        # Python calls for each route and each included router: placed after the forecasting
        # and registry routers, finding one cost a single forecast about half a millisecond.
        predictions_api.model_router,
        predictions_api.forecast_router,
        *upload_routers,
        health.router,
        identity_api.router,
        identity_api.members_router,
        jobs_api.router,
        datasets_api.router,
        # Before the registry router: "/models/algorithms" must not be read as a model id.
        forecasting_api.router,
        registry_api.router,
        predictions_api.router,
        pipelines_api.router,
        monitoring_api.router,
        monitoring_api.dashboard_router,
        predictions_api.monitoring_router,
        forge_api.router,
        forge_training_api.router,
        forge_instruction_api.router,
        webhooks_api.router,
        insights_api.router,
        insights_compat_api.router,
    ):
        app.include_router(router)
    return app
