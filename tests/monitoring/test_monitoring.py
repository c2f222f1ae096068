"""Monitoring over HTTP and the WebSocket hub: a measured system snapshot (also pushed on
the "system" topic), component health, this process's recent log records (filtered,
without secrets) and each model's live figures from its predictions."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import structlog

from tests.conftest import Account, add_member, assert_envelope, register, wait_until
from tests.core.test_websocket import authed, receive_until
from tests.jobs.test_jobs_api import enqueue, wait_job
from tests.predictions.test_predictions import predict, train
from vur.core.db import Database
from vur.identity.models import User

pytestmark = pytest.mark.anyio

MONITORING = "/api/v1/monitoring"


def assert_percent(value: float) -> None:
    assert isinstance(value, float | int) and 0 <= value <= 100, value


async def test_system_snapshot_is_measured(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.get(f"{MONITORING}/system", headers=account.headers)
    assert response.status_code == 200, response.text
    snapshot = response.json()
    assert set(snapshot) == {"timestamp", "cpu", "memory", "swap", "disk", "network", "process"}
    stamp = datetime.fromisoformat(snapshot["timestamp"])
    assert stamp.tzinfo is not None and abs((datetime.now(UTC) - stamp).total_seconds()) < 60

    cpu = snapshot["cpu"]
    assert cpu["count"] >= 1 and len(cpu["per_core_percent"]) == cpu["count"]
    for percent in [cpu["percent"], *cpu["per_core_percent"]]:
        assert_percent(percent)
    assert len(cpu["load_average"]) == 3 and all(load >= 0 for load in cpu["load_average"])

    memory, swap, disk = snapshot["memory"], snapshot["swap"], snapshot["disk"]
    assert memory["total_bytes"] > 0 and memory["total_bytes"] >= memory["used_bytes"] and memory["total_bytes"] >= memory["available_bytes"]
    assert swap["total_bytes"] >= swap["used_bytes"]
    assert disk["total_bytes"] > 0 and disk["total_bytes"] >= disk["used_bytes"] and disk["free_bytes"] > 0
    for percent in (memory["percent"], swap["percent"], disk["percent"]):
        assert_percent(percent)

    network = snapshot["network"]
    for counter in ("bytes_sent", "bytes_recv", "packets_sent", "packets_recv"):
        assert isinstance(network[counter], int) and network[counter] >= 0
    assert network["bytes_sent_per_second"] >= 0 and network["bytes_recv_per_second"] >= 0

    process = snapshot["process"]
    assert process["rss_bytes"] > 0 and process["threads"] >= 1 and process["open_files"] >= 0
    assert process["cpu_percent"] >= 0 and process["uptime_seconds"] > 0 and isinstance(process["pid"], int)


async def test_system_metrics_are_pushed_on_the_system_topic(ws_url: str, account: Account) -> None:
    async with authed(ws_url, account) as ws:
        # Not `subscribe()`: an event may arrive before the "subscribed" reply.
        await ws.send(json.dumps({"type": "subscribe", "topics": ["system"]}))
        messages = await receive_until(ws, lambda m: m["type"] == "system_metrics", timeout=10)
    event = messages[-1]
    assert event["topic"] == "system"
    assert {"timestamp", "cpu", "memory", "swap", "disk", "network", "process"} <= set(event["data"])
    assert_percent(event["data"]["cpu"]["percent"])


async def test_health_reports_every_component(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.get(f"{MONITORING}/health", headers=account.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "healthy", report
    components = report["components"]
    assert components["database"]["status"] == "healthy" and components["database"]["latency_ms"] >= 0
    assert components["storage"]["status"] == "healthy" and components["storage"]["free_bytes"] > 0
    runner = components["job_runner"]
    assert runner["status"] == "healthy" and runner["mode"] == "inprocess" and runner["alive"] is True and runner["processes"] == 2
    assert components["redis"]["status"] == "not_configured" and components["redis"]["detail"].startswith("no Redis URL is configured")


async def test_logs_keep_records_at_the_configured_level_without_secrets(client: httpx.AsyncClient, account: Account, database: Database) -> None:
    # The API runs in this process (the live server is a thread): what is logged here lands
    # in the same ring as the server's records. The test settings log at WARNING.
    marker = uuid.uuid4().hex
    request_id = f"monitoring-{marker}"
    before = datetime.now(UTC)
    log = structlog.get_logger("tests.monitoring")
    # Records about a workspace name it, as a request's, a job's and a stream's do.
    with structlog.contextvars.bound_contextvars(request_id=request_id, workspace_id=account.workspace_id):
        log.info("below_the_level", marker=marker)
        log.warning(
            "probe_warning", marker=marker, password="hunter2", api_token="t0k3n", Authorization="Bearer x", client_secret="s", detail={"rows": 3}, ratio=float("nan")
        )
        log.error("probe_error", marker=marker)
    log.error("probe_of_the_process", marker=marker)
    after = datetime.now(UTC)

    async def logs(**params: object) -> httpx.Response:
        response = await client.get(f"{MONITORING}/logs", headers=account.headers, params={"contains": marker, **params})
        assert response.status_code == 200, response.text
        return response

    everything = await logs()
    records = everything.json()
    assert [r["event"] for r in records] == ["probe_error", "probe_warning"] and everything.headers["X-Total-Count"] == "2"
    warning = records[1]
    assert warning["level"] == "warning" and warning["request_id"] == request_id and warning["logger"] is None
    assert warning["fields"] == {"marker": marker, "workspace_id": account.workspace_id, "detail": "{'rows': 3}", "ratio": "nan"}
    assert datetime.fromisoformat(warning["timestamp"]) >= before - timedelta(seconds=1)

    assert [r["event"] for r in (await logs(level="error")).json()] == ["probe_error"]
    assert [r["event"] for r in (await logs(level="warning")).json()] == ["probe_error", "probe_warning"]
    limited = await logs(limit=1)
    assert [r["event"] for r in limited.json()] == ["probe_error"] and limited.headers["X-Total-Count"] == "2"
    naive_utc = (before - timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    assert len((await logs(since=naive_utc)).json()) == 2
    assert (await logs(since=(after + timedelta(seconds=1)).isoformat())).json() == []
    assert (await logs(until=(before - timedelta(seconds=1)).isoformat())).json() == []

    # Requests are logged at INFO: below the configured level, so not kept.
    recent = (await client.get(f"{MONITORING}/logs", headers=account.headers, params={"limit": 1000})).json()
    assert recent and {r["level"] for r in recent} <= {"warning", "error", "critical"}
    secret_keys = {key for record in recent for key in record["fields"] if any(word in key.lower() for word in ("password", "token", "secret", "authorization"))}
    assert secret_keys == set()

    # Another workspace reads none of them; a platform admin reads them all, the process's own too.
    stranger = await register(client)
    assert (await client.get(f"{MONITORING}/logs", headers=stranger.headers, params={"contains": marker})).json() == []
    with database.session() as session:
        session.get(User, uuid.UUID(stranger.user_id)).is_superuser = True
    seen = (await client.get(f"{MONITORING}/logs", headers=stranger.headers, params={"contains": marker})).json()
    assert [r["event"] for r in seen] == ["probe_of_the_process", "probe_error", "probe_warning"]

    assert_envelope(await client.get(f"{MONITORING}/logs", headers=account.headers, params={"level": "loud"}), 422)
    assert_envelope(await client.get(f"{MONITORING}/logs", headers=account.headers, params={"limit": 0}), 422)
    assert_envelope(await client.get(f"{MONITORING}/logs", headers=account.headers, params={"since": "yesterday"}), 422)


async def test_a_job_process_records_reach_the_logs_of_its_workspace(client: httpx.AsyncClient, account: Account, other_account: Account, database: Database) -> None:
    # The job runs in a job process of the API's runner, which logs `job_failed` there.
    job_id = enqueue(database, account, steps=3, delay=0.01, fail_at=2)
    job = await wait_job(client, account, job_id)
    assert job["status"] == "failed", job
    member = await add_member(client, account, "viewer")

    async def job_records(reader: Account) -> list[dict]:
        response = await client.get(f"{MONITORING}/logs", headers=reader.headers, params={"contains": job_id})
        assert response.status_code == 200, response.text
        return response.json()

    async def arrived() -> bool:
        return bool(await job_records(member))

    await wait_until(arrived, timeout=10)
    [record] = await job_records(member)
    assert record["level"] == "warning" and record["event"] == "job_failed"
    assert record["fields"]["job_id"] == job_id and record["fields"]["job_type"] == "tests.count"
    assert record["fields"]["workspace_id"] == account.workspace_id
    assert record["fields"]["error"] == "ValueError('failing at step 2 as asked')" and "Traceback" in record["fields"]["traceback"]
    assert timedelta(0) <= datetime.now(UTC) - datetime.fromisoformat(record["timestamp"]) < timedelta(minutes=5)
    assert await job_records(account) == [record]
    assert await job_records(other_account) == []


async def test_models_show_validation_metrics_beside_live_figures(client: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    model = (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()

    async def overview() -> dict:
        response = await client.get(f"{MONITORING}/models", headers=account.headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-Total-Count"] == "1"
        [row] = response.json()
        return row

    fresh = await overview()
    assert fresh["id"] == model_id and fresh["status"] == "trained" and fresh["algorithm"] == "naive" and fresh["latest_version"] == 1
    assert fresh["metrics"] == model["metrics"] and fresh["metrics"] and fresh["trained_at"] is not None
    assert fresh["predictions_24h"] == 0 and fresh["last_prediction_at"] is None
    assert fresh["live_error"] == {"scored_points": 0, "mae": None, "rmse": None}

    first = (await predict(client, account, model_id, horizon=3, series_ids=["A"])).json()
    forecast = {p["timestamp"]: p["value"] for p in first["predictions"]}
    actual = [110.0, 95.0]
    stamps = sorted(forecast)[:2]
    observed = [{"series_id": "A", "timestamp": s, "value": v} for s, v in zip(stamps, actual, strict=True)]
    assert (await predict(client, account, model_id, horizon=1, series_ids=["A"], observations=observed)).status_code == 200

    live = await overview()
    errors = [a - forecast[s] for s, a in zip(stamps, actual, strict=True)]
    assert live["predictions_24h"] == 2 and live["last_prediction_at"] is not None
    assert live["live_error"]["scored_points"] == 2
    assert live["live_error"]["mae"] == pytest.approx(sum(abs(e) for e in errors) / 2, rel=1e-5)
    assert live["live_error"]["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / 2), rel=1e-5)

    stranger = await register(client)
    others = await client.get(f"{MONITORING}/models", headers=stranger.headers)
    assert others.json() == [] and others.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize("path", ["system", "health", "logs", "models"])
async def test_monitoring_requires_authentication(client: httpx.AsyncClient, path: str) -> None:
    assert_envelope(await client.get(f"{MONITORING}/{path}"), 401)
    assert_envelope(await client.get(f"{MONITORING}/{path}", headers={"Authorization": "Bearer not-a-token"}), 401)
