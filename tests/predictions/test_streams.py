"""Database sources and prediction streams, against a real table the test keeps writing
to: PostgreSQL when VUR_TEST_POSTGRES_URL is set, an SQLite file otherwise; and every
test again on MySQL/MariaDB when VUR_TEST_MYSQL_URL names a server (`.ci/run` starts one)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import Account, assert_envelope, register, scratch_database, wait_until
from tests.core.test_websocket import authed, receive_until, subscribe
from tests.forecasting.test_exogenous import LEVEL, POINTS, START, driven, driven_dataset, stamp
from tests.forecasting.test_test_split import trained
from tests.predictions.test_predictions import LAST, predict, train
from vur.core.db import Database, get_database, utcnow
from vur.core.storage import LocalArtifactStore
from vur.monitoring.alerts import evaluate
from vur.predictions import sources
from vur.predictions.models import DatabaseConnection, PredictionStream
from vur.predictions.schemas import MAX_OBSERVATIONS
from vur.predictions.streams import _claim, run_due_streams, run_stream_once
from vur.settings import Settings

pytestmark = pytest.mark.anyio


class SourceTable:
    """A table of (measured_at, meter, reading) rows that the test appends to."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.engine = sa.create_engine(url)
        # MySQL's TIMESTAMP converts to the session's time zone; DATETIME keeps what it is given.
        moment = "DATETIME" if self.engine.dialect.name == "mysql" else "TIMESTAMP"
        with self.engine.begin() as connection:
            connection.execute(sa.text(f"CREATE TABLE {name} (measured_at {moment}, meter VARCHAR(20), reading FLOAT)"))

    def insert(self, *rows: tuple[datetime, str, float]) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.text(f"INSERT INTO {self.name} VALUES (:t, :m, :v)"), [{"t": t, "m": m, "v": v} for t, m, v in rows])

    def drop(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE {self.name}"))
        self.engine.dispose()


@contextmanager
def mysql_database(admin_url: str) -> Iterator[str]:
    name = f"vur_source_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(params=["platform", "mysql"])
def source(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path, account: Account) -> Iterator[SourceTable]:
    """A source in a database of its own: PostgreSQL's or MySQL's (the test roles may
    create databases, not tables in the servers' default one); on SQLite, a file in the
    account's workspace folder of the sources folder."""
    name = f"readings_{uuid.uuid4().hex[:8]}"
    if request.param == "mysql":
        if not (admin_url := os.environ.get("VUR_TEST_MYSQL_URL")):
            pytest.skip("VUR_TEST_MYSQL_URL is not set")
        with mysql_database(admin_url) as url:
            table = SourceTable(url, name)
            yield table
            table.drop()
        return
    if os.environ.get("VUR_TEST_POSTGRES_URL"):
        with scratch_database(tmp_path) as url:
            table = SourceTable(url, name)
            yield table
            table.drop()
        return
    folder = settings.sources_dir / account.workspace_id
    folder.mkdir(parents=True, exist_ok=True)
    table = SourceTable(f"sqlite:///{folder / f'{name}.db'}", name)
    yield table
    table.drop()


def hours_after_training(k: int) -> datetime:
    return LAST + timedelta(hours=k)


async def register_source(client: httpx.AsyncClient, account: Account, table: SourceTable, **overrides: object) -> httpx.Response:
    body = {"name": "meters", "url": table.url, "table_name": table.name, "timestamp_column": "measured_at", "value_column": "reading", "series_column": "meter", **overrides}
    return await client.post("/api/v1/monitoring/databases", headers=account.headers, json=body)


async def test_a_stream_predicts_from_new_rows_and_scores_earlier_forecasts(
    ws_url: str, client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database
) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    created = await register_source(client, account, source)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["status"] == "untested" and "url" not in shown and "postgres:postgres" not in created.text
    with database.session() as session:
        stored = session.get(DatabaseConnection, uuid.UUID(shown["id"]))
        assert stored is not None and source.url.split("://")[1] not in stored.url_encrypted
    tested = await client.post(f"/api/v1/monitoring/databases/{shown['id']}/test", headers=account.headers)
    assert tested.json()["status"] == "connected", tested.text

    async with authed(ws_url, account) as ws:
        await subscribe(ws, "predictions")
        start = {"pipeline_id": None, "model_id": model_id, "database_id": shown["id"], "interval_seconds": 1}
        started = await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)
        assert started.status_code == 201, started.text
        stream_id = started.json()["id"]
        assert started.json()["horizon"] == 24 and started.json()["status"] == "running"

        source.insert((hours_after_training(1), "A", 500.0))
        first = (await receive_until(ws, lambda m: m["type"] == "prediction" and m["data"].get("stream_id") == stream_id, timeout=30))[-1]["data"]
        assert first["rows_arrived"] == 1 and first["source"] == "stream"
        assert {p["series_id"] for p in first["predictions"]} == {"A"}
        assert [p["value"] for p in first["predictions"]][:3] == [500.0] * 3  # naive: the newest value
        assert first["predictions"][0]["timestamp"].startswith(hours_after_training(2).isoformat())

        source.insert((hours_after_training(2), "A", 700.0))
        second = (await receive_until(ws, lambda m: m["type"] == "prediction" and m["data"]["prediction_id"] != first["prediction_id"], timeout=30))[-1]["data"]
        assert second["predictions"][0]["value"] == 700.0

    status = (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()
    assert status["rows_read"] == 2 and status["predictions_made"] == 2
    assert status["last_timestamp"].startswith(hours_after_training(2).isoformat())
    # The first forecast said 500 for hour 2; 700 arrived: an error of 200 on that point.
    stats = (await client.get("/api/v1/predictions/stats", headers=account.headers, params={"model_id": model_id})).json()
    assert stats["by_source"]["stream"] == 2 and stats["error"]["scored_points"] == 1 and stats["error"]["mae"] == pytest.approx(200.0)

    stopped = await client.post(f"/api/v1/monitoring/predictions/{stream_id}/stop", headers=account.headers)
    assert stopped.json()["status"] == "stopped"
    assert_envelope(await client.post(f"/api/v1/monitoring/predictions/{stream_id}/stop", headers=account.headers), 409)
    source.insert((hours_after_training(3), "A", 800.0))
    await asyncio.sleep(2.5)
    after = (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()
    assert after["predictions_made"] == 2, "a stopped stream reads nothing"


async def test_a_stream_resumes_from_its_cursor(client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings) -> None:
    """What a restarted server does: run the stored stream from its stored cursor."""
    model_id = await train(client, account, tmp_path, algorithm="naive")
    source.insert((hours_after_training(1), "B", 10.0), (hours_after_training(2), "B", 11.0))
    database_id = (await register_source(client, account, source)).json()["id"]
    # A long interval: the server's scheduler runs it once, then leaves it to this test.
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]

    async def ran_once() -> bool:
        return (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()["predictions_made"] == 1

    await wait_until(ran_once)
    store = LocalArtifactStore(settings.artifacts_dir)
    run_stream_once(database, store, settings, uuid.UUID(stream_id))  # nothing new: no prediction
    source.insert((hours_after_training(3), "B", 12.0))
    run_stream_once(database, store, settings, uuid.UUID(stream_id))
    with database.session() as session:
        stream = session.get(PredictionStream, uuid.UUID(stream_id))
        assert stream is not None and (stream.rows_read, stream.predictions_made) == (3, 2)
    latest = (await client.get("/api/v1/predictions/history", headers=account.headers, params={"source": "stream", "limit": 1})).json()[0]
    assert latest["predictions"][0]["value"] == 12.0


async def test_a_stream_forecasts_from_the_future_values_in_rows_ahead(
    client: httpx.AsyncClient, account: Account, source: SourceTable, database: Database, settings: Settings
) -> None:
    """A model fitted with an exogenous column x reads x's future values from the source's
    rows whose reading is still empty; until they cover the horizon, the stream waits
    (no prediction, no failure) and keeps its cursor."""
    model_id = await trained(client, account, {"dataset_id": await driven_dataset(client, account), "algorithm": "linear", "hyperparameters": LEVEL, "horizon": 3})
    with source.engine.begin() as connection:
        connection.execute(sa.text(f"ALTER TABLE {source.name} ADD COLUMN x FLOAT"))

    def add(hour: int, reading: float | None, x: float) -> None:
        with source.engine.begin() as connection:
            connection.execute(sa.text(f"INSERT INTO {source.name} (measured_at, reading, x) VALUES (:t, :r, :x)"), {"t": START + timedelta(hours=hour), "r": reading, "x": x})

    url = "/api/v1/monitoring/predictions/start"
    plain = (await register_source(client, account, source, series_column=None)).json()["id"]
    refused = assert_envelope(await client.post(url, headers=account.headers, json={"model_id": model_id, "database_id": plain, "interval_seconds": 1}), 409)
    assert "['x']" in refused["error"] and "exogenous_columns" in refused["details"]["database_id"]
    created = await register_source(client, account, source, series_column=None, exogenous_columns=["x"])
    assert created.status_code == 201 and created.json()["exogenous_columns"] == ["x"], created.text
    database_id = created.json()["id"]
    assert (await client.post(f"/api/v1/monitoring/databases/{database_id}/test", headers=account.headers)).json()["status"] == "connected"

    add(POINTS, driven(POINTS, 2.0), 2.0)
    add(POINTS + 1, None, 9.5)  # one step ahead of the three the horizon needs
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post(url, headers=account.headers, json=start)).json()["id"]

    async def waiting() -> bool:
        return ((await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()["last_error"] or "").startswith("waiting for future values")

    await wait_until(waiting)
    status = (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()
    assert (status["status"], status["predictions_made"], status["consecutive_failures"], status["last_timestamp"]) == ("running", 0, 0, None)
    assert f"no value of 'x' for series 'series_1' at {stamp(POINTS + 2)}" in status["last_error"]

    add(POINTS + 2, None, 0.5)
    add(POINTS + 3, None, 7.25)
    run_stream_once(database, LocalArtifactStore(settings.artifacts_dir), settings, uuid.UUID(stream_id))
    status = (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()
    assert (status["predictions_made"], status["last_error"]) == (1, None)
    points = (await client.get("/api/v1/predictions/history", headers=account.headers, params={"source": "stream", "limit": 1})).json()[0]["predictions"]
    assert [p["timestamp"][:19] for p in points] == [stamp(POINTS + k) for k in (1, 2, 3)]
    assert [p["value"] for p in points] == pytest.approx([driven(POINTS + k, x) for k, x in ((1, 9.5), (2, 0.5), (3, 7.25))], abs=0.75)


def _run_due_when_released(settings: Settings, release: Any, ran: Any) -> None:
    """A second process's stream scheduler, taking one pass when released."""
    database = get_database(settings.resolved_database_url)
    release.wait(30)
    ran.put(run_due_streams(database, LocalArtifactStore(settings.artifacts_dir), settings))


async def test_processes_racing_for_a_due_stream_run_it_once(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings
) -> None:
    """Two more processes (and the server's own scheduler) find the same stream due at the
    same moment: the compare-and-set on last_run_at lets exactly one of them run it."""
    model_id = await train(client, account, tmp_path, algorithm="naive")
    source.insert((hours_after_training(1), "A", 5.0))
    database_id = (await register_source(client, account, source)).json()["id"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = uuid.UUID((await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"])

    def made() -> int:
        with database.session() as session:
            stream = session.get(PredictionStream, stream_id)
            assert stream is not None
            return stream.predictions_made

    async def ran_once() -> bool:
        return made() == 1

    await wait_until(ran_once)
    context = multiprocessing.get_context("spawn")
    release, ran = context.Event(), context.Queue()
    racers = [context.Process(target=_run_due_when_released, args=(settings, release, ran)) for _ in range(2)]
    for racer in racers:
        racer.start()
    await asyncio.sleep(8)  # the racers import and connect, then wait for the release
    source.insert((hours_after_training(2), "A", 6.0))
    with database.session() as session:  # due again: its interval has passed
        session.execute(sa.update(PredictionStream).where(PredictionStream.id == stream_id).values(last_run_at=datetime.now(UTC) - timedelta(hours=2)))
    release.set()
    for racer in racers:
        racer.join(60)
        assert racer.exitcode == 0
    await asyncio.sleep(1.5)  # the server's scheduler had its chances too
    # One run in all (the server's scheduler may have been the one), and one prediction:
    # the run holds the stream's row lock and moves its cursor, so even a second run
    # would find nothing new; the claim keeps it from being started at all.
    assert sum(ran.get(timeout=5) for _ in racers) <= 1 and made() == 2
    # The claim itself, step by step: of two schedulers that read the same last_run_at,
    # the second to write loses.
    with database.session() as session:
        seen = session.get(PredictionStream, stream_id).last_run_at  # type: ignore[union-attr]
    now = datetime.now(UTC)
    assert _claim(database, stream_id, seen, now) is True and _claim(database, stream_id, seen, now + timedelta(seconds=1)) is False


async def test_a_failing_source_is_recorded_and_stops_the_stream(client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    database_id = (await register_source(client, account, source, value_column="no_such_column")).json()["id"]
    tested = (await client.post(f"/api/v1/monitoring/databases/{database_id}/test", headers=account.headers)).json()
    assert tested["status"] == "failed" and "no_such_column" in tested["last_error"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 1}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]

    async def failed() -> bool:
        return (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()["status"] == "failed"

    await wait_until(failed, timeout=30)
    status = (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()
    assert status["consecutive_failures"] == 5 and "no_such_column" in status["last_error"]
    # The failures are logged for the stream's workspace, and for no other.
    logs = (await client.get("/api/v1/monitoring/logs", headers=account.headers, params={"contains": stream_id})).json()
    assert {r["event"] for r in logs} == {"stream_run_failed"} and len(logs) == 5
    stranger = await register(client)
    assert (await client.get("/api/v1/monitoring/logs", headers=stranger.headers, params={"contains": stream_id})).json() == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "sqlite:////etc/passwd"}, "url"),
        ({"url": "sqlite:///../../vur.db"}, "url"),
        ({"url": "sqlite:///../another-workspace/readings.db"}, "url"),
        ({"url": "sqlite://"}, "url"),
        ({"url": "postgresql://u:p@169.254.169.254/db"}, "url"),
        # The same metadata address in the other spellings a resolver accepts.
        ({"url": "postgresql://u:p@[::ffff:169.254.169.254]:5432/db"}, "url"),
        ({"url": "postgresql://u:p@[::ffff:a9fe:a9fe]:5432/db"}, "url"),
        ({"url": "postgresql://u:p@2852039166:5432/db"}, "url"),
        ({"url": "postgresql://u:p@0xa9fea9fe:5432/db"}, "url"),
        ({"url": "mysql://u:p@metadata.google.internal./db"}, "url"),
        ({"url": "postgresql:///db?host=/var/run/postgresql"}, "url"),
        # Options that name files or services on the VUR server.
        ({"url": "postgresql://u:p@db.internal/db?service=foo"}, "url"),
        ({"url": "postgresql://u:p@db.internal/db?sslmode=verify-full&sslrootcert=/etc/passwd"}, "url"),
        ({"url": "postgresql://u:p@db.internal/db?passfile=/etc/shadow"}, "url"),
        ({"url": "postgresql://u:p@db.internal/db?options=-c%20default_transaction_read_only%3Doff"}, "url"),
        ({"url": "mysql://u:p@db.internal/db?ssl_ca=/etc/passwd"}, "url"),
        ({"url": "mysql://u:p@db.internal/db?read_default_file=/etc/mysql/debian.cnf"}, "url"),
        ({"url": "postgresql://u:p@db.internal/"}, "url"),
        ({"url": "oracle://u:p@db.internal/x"}, "url"),
        ({"url": "not a url at all"}, "url"),
        ({"query": "SELECT * FROM t"}, "table_name"),
        ({"table_name": None, "query": "DELETE FROM readings"}, "query"),
        ({"table_name": None, "query": "SELECT 1; DROP TABLE readings"}, "query"),
        ({"table_name": "readings; DROP TABLE x"}, "table_name"),
        ({"value_column": "reading OR 1=1"}, "value_column"),
        ({"name": ""}, "name"),
        ({"url": 42}, "url"),
        ({"password": "x"}, "password"),
    ],
)
async def test_unacceptable_sources_are_refused(client: httpx.AsyncClient, account: Account, source: SourceTable, overrides: dict, field: str) -> None:
    details = assert_envelope(await register_source(client, account, source, **overrides), 422)["details"]
    assert any(field in key for key in details), details
    assert (await client.get("/api/v1/monitoring/databases", headers=account.headers)).json() == []


async def test_a_host_name_that_resolves_to_a_metadata_address_is_not_connected_to(client: httpx.AsyncClient, account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration judges addresses written in the URL; a name is judged by what it
    resolves to when a connection is made, and the driver is given that address."""
    real = socket.getaddrinfo

    def rebinding(host: str, *args: object, **kwargs: object) -> list:
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 5432))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    body = {"name": "sneaky", "url": "postgresql://u:p@rebind.example:5432/db", "table_name": "readings", "timestamp_column": "measured_at", "value_column": "reading"}
    created = await client.post("/api/v1/monitoring/databases", headers=account.headers, json=body)
    assert created.status_code == 201, created.text
    tested = (await client.post(f"/api/v1/monitoring/databases/{created.json()['id']}/test", headers=account.headers)).json()
    assert tested["status"] == "failed" and "resolves to 169.254.169.254" in tested["last_error"], tested


async def test_streams_refuse_what_cannot_run(client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable) -> None:
    database_id = (await register_source(client, account, source)).json()["id"]
    model_id = await train(client, account, tmp_path, algorithm="naive")
    url = "/api/v1/monitoring/predictions/start"
    body = {"model_id": model_id, "database_id": database_id, "interval_seconds": 1}
    assert_envelope(await client.post(url, headers=account.headers, json={**body, "interval_seconds": 0.5}), 422)
    assert_envelope(await client.post(url, headers=account.headers, json={**body, "interval_seconds": "fast"}), 422)
    assert_envelope(await client.post(url, headers=account.headers, json={**body, "database_id": str(uuid.uuid4())}), 404)
    assert_envelope(await client.post(url, headers=account.headers, json={**body, "pipeline_id": str(uuid.uuid4())}), 404)
    stranger = await register(client)
    strangers_pipeline = (await client.post("/api/v1/pipelines", headers=stranger.headers, json={"name": "theirs"})).json()["id"]
    assert_envelope(await client.post(url, headers=account.headers, json={**body, "pipeline_id": strangers_pipeline}), 404)
    assert_envelope(await client.post(url, headers=stranger.headers, json=body), 404)
    assert_envelope(await client.get(f"/api/v1/monitoring/databases/{database_id}", headers=stranger.headers), 404)
    configured = await client.post("/api/v1/models/configure", headers=account.headers, json={"dataset_id": (await client.get(f"/api/v1/models/{model_id}", headers=account.headers)).json()["dataset_id"], "algorithm": "naive", "horizon": 4, "series_id_column": "series", "date_column": "date", "target_column": "value"})
    assert_envelope(await client.post(url, headers=account.headers, json={**body, "model_id": configured.json()["model_id"]}), 409)
    assert (await client.get("/api/v1/monitoring/predictions", headers=account.headers)).json() == []
    assert (await predict(client, account, model_id, horizon=1)).status_code == 200


async def test_sources_are_opened_read_only(source: SourceTable, settings: Settings, account: Account) -> None:
    url = sources.checked_url(source.url, settings, uuid.UUID(account.workspace_id)).render_as_string(hide_password=False)
    engine = sources.open_engine(url)
    try:
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
            connection.execute(sa.text(f"INSERT INTO {source.name} VALUES ('2026-01-01 00:00:00', 'A', 1.0)"))
    finally:
        engine.dispose()
    with source.engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT count(*) FROM {source.name}")).scalar() == 0


async def test_source_urls_carry_only_the_safe_options(client: httpx.AsyncClient, account: Account) -> None:
    body = {"name": "remote", "table_name": "readings", "timestamp_column": "measured_at", "value_column": "reading"}
    url = "/api/v1/monitoring/databases"
    refused = assert_envelope(await client.post(url, headers=account.headers, json={**body, "url": "postgresql://u:p@db.internal/db?sslmode=require&service=foo"}), 422)
    assert "'service'" in refused["details"]["url"] and "application_name, sslmode" in refused["details"]["url"]
    for accepted in ("postgresql://u:p@db.internal/db?sslmode=require&application_name=vur", "mysql://u:p@db.internal/db?charset=utf8mb4"):
        created = await client.post(url, headers=account.headers, json={**body, "url": accepted})
        assert created.status_code == 201, created.text


async def test_sqlite_sources_are_files_of_the_workspace(client: httpx.AsyncClient, account: Account, other_account: Account, settings: Settings) -> None:
    """Each workspace has its own folder of the sources folder: another workspace can
    neither name a file there nor reach it by the same relative name."""
    folder = settings.sources_dir / account.workspace_id
    folder.mkdir(parents=True, exist_ok=True)
    placed = SourceTable(f"sqlite:///{folder / 'shared-name.db'}", "readings")
    try:
        placed.insert((hours_after_training(1), "A", 1.0))
        body = {"name": "meters", "table_name": "readings", "timestamp_column": "measured_at", "value_column": "reading"}
        url = "/api/v1/monitoring/databases"
        own = (await client.post(url, headers=account.headers, json={**body, "url": "sqlite:///shared-name.db"})).json()
        assert (await client.post(f"{url}/{own['id']}/test", headers=account.headers)).json()["status"] == "connected"
        for named in (placed.url, f"sqlite:///../{account.workspace_id}/shared-name.db"):
            refused = assert_envelope(await client.post(url, headers=other_account.headers, json={**body, "url": named}), 422)
            assert str(settings.sources_dir.resolve() / other_account.workspace_id) in refused["details"]["url"]
        theirs = (await client.post(url, headers=other_account.headers, json={**body, "url": "sqlite:///shared-name.db"})).json()
        tested = (await client.post(f"{url}/{theirs['id']}/test", headers=other_account.headers)).json()
        assert tested["status"] == "failed", "the same name in another workspace's folder: no such file"
    finally:
        placed.drop()


# A query that runs far longer than the (shortened) time limit, in each dialect's words.
ENDLESS = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT measured_at, meter, reading FROM {table} CROSS JOIN (SELECT max(x) AS m FROM c) AS endless",
    "postgresql": "SELECT measured_at, meter, reading FROM {table} CROSS JOIN pg_sleep(60)",
    "mysql": "SELECT measured_at, meter, reading FROM {table} CROSS JOIN (SELECT SLEEP(60) AS s) AS slow",
}


async def test_a_slow_source_query_is_stopped_and_holds_no_one_up(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection test and a stream's read end at the time limit, saying so; while a
    stream's read runs, stopping the stream does not wait for it."""
    monkeypatch.setattr(sources, "SOURCE_QUERY_SECONDS", 3)
    model_id = await train(client, account, tmp_path, algorithm="naive")
    source.insert((hours_after_training(1), "A", 1.0))  # a row to run the slow part for
    query = ENDLESS[source.engine.dialect.name].format(table=source.name)
    database_id = (await register_source(client, account, source, table_name=None, query=query)).json()["id"]
    began = asyncio.get_running_loop().time()
    tested = (await client.post(f"/api/v1/monitoring/databases/{database_id}/test", headers=account.headers)).json()
    assert (tested["status"], tested["last_error"]) == ("failed", "the source query took longer than 3 s")
    assert asyncio.get_running_loop().time() - began < 3 + 5

    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]
    stream_url = f"/api/v1/monitoring/predictions/{stream_id}"

    async def reading() -> bool:
        return (await client.get(stream_url, headers=account.headers)).json()["last_run_at"] is not None

    await wait_until(reading)  # the scheduler has claimed the run: its read takes 3 s
    began = asyncio.get_running_loop().time()
    stopped = await client.post(f"{stream_url}/stop", headers=account.headers)
    assert stopped.json()["status"] == "stopped" and asyncio.get_running_loop().time() - began < 1.5, "the stop waited for the read"

    async def failed_once() -> bool:
        return (await client.get(stream_url, headers=account.headers)).json()["consecutive_failures"] == 1

    await wait_until(failed_once)
    status = (await client.get(stream_url, headers=account.headers)).json()
    assert (status["status"], status["last_error"]) == ("stopped", "the source query took longer than 3 s")


async def test_a_stream_waits_for_a_missing_row(client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings) -> None:
    """Rows that skip a step are not a failure: the stream waits for the missing one (a
    row late to the source) and predicts once it has arrived; one that never does leaves
    the stream without new rows, which the stalled-stream alert reports."""
    model_id = await train(client, account, tmp_path, algorithm="naive")
    source.insert((hours_after_training(1), "A", 1.0), (hours_after_training(3), "A", 3.0))
    database_id = (await register_source(client, account, source)).json()["id"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]
    stream_url = f"/api/v1/monitoring/predictions/{stream_id}"

    async def waiting() -> bool:
        return ((await client.get(stream_url, headers=account.headers)).json()["last_error"] or "").startswith("waiting for missing rows")

    await wait_until(waiting)
    store = LocalArtifactStore(settings.artifacts_dir)
    for _ in range(5):  # as many runs as would fail a stream
        run_stream_once(database, store, settings, uuid.UUID(stream_id))
    status = (await client.get(stream_url, headers=account.headers)).json()
    assert (status["status"], status["consecutive_failures"], status["predictions_made"], status["last_timestamp"]) == ("running", 0, 0, None)
    assert status["last_error"] == f"waiting for missing rows: none for series 'A' at {hours_after_training(2).isoformat()}"
    with database.session() as session:
        evaluate(session, utcnow() + timedelta(hours=11))  # ten intervals without a new row
    stalled = (await client.get("/api/v1/monitoring/alerts", headers=account.headers, params={"kind": "stream_stalled"})).json()
    assert [a["subject_id"] for a in stalled] == [stream_id]

    source.insert((hours_after_training(2), "A", 2.0))
    run_stream_once(database, store, settings, uuid.UUID(stream_id))
    status = (await client.get(stream_url, headers=account.headers)).json()
    assert (status["predictions_made"], status["rows_read"], status["last_error"]) == (1, 3, None)
    assert status["last_timestamp"].startswith(hours_after_training(3).isoformat())


async def test_a_row_the_source_holds_twice_is_read_once(client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    source.insert((hours_after_training(1), "A", 1.0), (hours_after_training(1), "A", 1.0), (hours_after_training(2), "A", 2.0))
    database_id = (await register_source(client, account, source)).json()["id"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]
    run_stream_once(database, LocalArtifactStore(settings.artifacts_dir), settings, uuid.UUID(stream_id))
    status = (await client.get(f"/api/v1/monitoring/predictions/{stream_id}", headers=account.headers)).json()
    assert (status["predictions_made"], status["consecutive_failures"], status["last_error"]) == (1, 0, None), status


async def test_a_horizon_beyond_the_models_is_refused_at_start_and_a_refused_run_says_why(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings
) -> None:
    model_id = await train(client, account, tmp_path, algorithm="naive")
    database_id = (await register_source(client, account, source)).json()["id"]
    url = "/api/v1/monitoring/predictions/start"
    body = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    refused = assert_envelope(await client.post(url, headers=account.headers, json={**body, "horizon": 999}), 422)
    assert "24" in refused["error"] and "at most 24" in refused["details"]["horizon"]
    assert (await client.get("/api/v1/monitoring/predictions", headers=account.headers)).json() == []

    # A stream whose model was since retrained with a shorter horizon: its runs are refused.
    source.insert((hours_after_training(1), "A", 1.0))
    stream_id = (await client.post(url, headers=account.headers, json={**body, "horizon": 24})).json()["id"]
    stream_url = f"/api/v1/monitoring/predictions/{stream_id}"
    await wait_until(lambda: _predicted_once(client, account, stream_url))
    with database.session() as session:
        session.execute(sa.update(PredictionStream).where(PredictionStream.id == uuid.UUID(stream_id)).values(horizon=999))
    source.insert((hours_after_training(2), "A", 2.0))
    run_stream_once(database, LocalArtifactStore(settings.artifacts_dir), settings, uuid.UUID(stream_id))
    status = (await client.get(stream_url, headers=account.headers)).json()
    assert status["consecutive_failures"] == 1
    assert status["last_error"].startswith("The model cannot answer this request; horizon: this model forecasts at most 24 steps"), status["last_error"]


async def _predicted_once(client: httpx.AsyncClient, account: Account, stream_url: str) -> bool:
    """The server's scheduler has run the stream to the end (and leaves it to the test for an interval)."""
    return (await client.get(stream_url, headers=account.headers)).json()["predictions_made"] == 1


async def test_rows_beyond_one_read_are_reported(client: httpx.AsyncClient, account: Account, tmp_path: Path, source: SourceTable, database: Database, settings: Settings) -> None:
    """A source that holds more rows since training than a run reads (a burst, or a model
    trained long ago): the run predicts from the newest, and says the older ones went unread."""
    model_id = await train(client, account, tmp_path, algorithm="naive")
    source.insert((hours_after_training(1), "A", 1.0))
    database_id = (await register_source(client, account, source)).json()["id"]
    start = {"model_id": model_id, "database_id": database_id, "interval_seconds": 3600}
    stream_id = (await client.post("/api/v1/monitoring/predictions/start", headers=account.headers, json=start)).json()["id"]
    stream_url = f"/api/v1/monitoring/predictions/{stream_id}"
    await wait_until(lambda: _predicted_once(client, account, stream_url))
    # A burst: hours 2 and 3 are older than the newest MAX_OBSERVATIONS rows.
    source.insert(*((hours_after_training(k), "A", float(k)) for k in range(2, MAX_OBSERVATIONS + 4)))
    run_stream_once(database, LocalArtifactStore(settings.artifacts_dir), settings, uuid.UUID(stream_id))
    status = (await client.get(stream_url, headers=account.headers)).json()
    assert (status["predictions_made"], status["rows_read"], status["consecutive_failures"]) == (2, 1 + MAX_OBSERVATIONS, 0)
    assert status["last_error"].startswith(f"rows skipped: the source holds more than {MAX_OBSERVATIONS} rows since the model's training data ends")
    logs = (await client.get("/api/v1/monitoring/logs", headers=account.headers, params={"contains": stream_id})).json()
    assert [r["event"] for r in logs] == ["stream_rows_skipped"]
