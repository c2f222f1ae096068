"""Migrations: empty -> head -> base on the database under test (SQLite or PostgreSQL),
and a server that refuses to start on an un-migrated database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import create_engine, inspect

import vur.models  # noqa: F401
from vur.core import migrations
from vur.core.db import Base


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_to_head_and_down_to_base(fresh_database_url: str) -> None:
    assert migrations.current_revision(fresh_database_url) is None

    migrations.upgrade(fresh_database_url)
    assert migrations.current_revision(fresh_database_url) == migrations.head_revision()
    assert set(Base.metadata.tables) <= table_names(fresh_database_url)

    migrations.downgrade(fresh_database_url, "base")
    assert migrations.current_revision(fresh_database_url) is None
    assert table_names(fresh_database_url) <= {"alembic_version"}

    # And back up again: downgrades leave nothing behind that blocks a re-upgrade.
    migrations.upgrade(fresh_database_url)
    assert set(Base.metadata.tables) <= table_names(fresh_database_url)


def test_models_and_migrations_agree(fresh_database_url: str) -> None:
    """Autogenerate against a migrated database finds nothing to add: every table and
    column of the models is in a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    migrations.upgrade(fresh_database_url)
    engine = create_engine(fresh_database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_serve_refuses_an_unmigrated_database(fresh_database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "VUR_DATABASE_URL": fresh_database_url, "VUR_DATA_DIR": str(tmp_path), "VUR_PORT": "1"}
    result = subprocess.run([sys.executable, "-m", "vur.cli", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "vur db upgrade" in result.stderr
    assert "none (empty)" in result.stderr


def test_cli_upgrade_then_create_admin(fresh_database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "VUR_DATABASE_URL": fresh_database_url, "VUR_DATA_DIR": str(tmp_path)}
    upgrade = subprocess.run([sys.executable, "-m", "vur.cli", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    create = [sys.executable, "-m", "vur.cli", "users", "create", "--email", "Root@Example.com", "--password", "a-long-password", "--admin"]
    first = subprocess.run(create, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "root@example.com" in first.stdout and "platform admin" in first.stdout
    again = subprocess.run(create, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    short = subprocess.run([*create[:5], "--email", "x@example.com", "--password", "short"], env=env, capture_output=True, text=True, timeout=60)
    assert short.returncode == 2
    assert "at least 8 characters" in short.stderr



def test_0014_gives_existing_predictions_their_forecast_span(fresh_database_url: str) -> None:
    """Rows written before 0014 get first_ts/last_ts from the timestamps of their outputs
    (aware ones as naive UTC); a prediction without outputs keeps none."""
    migrations.upgrade(fresh_database_url, "0013")
    workspace, spanned, empty = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    moment = datetime(2026, 1, 1)
    workspaces = sa.table("workspaces", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()), sa.column("updated_at", sa.DateTime()))
    columns = ("workspace_id", "model_version", "source", "horizon", "series_count", "input_summary", "latency_ms", "scored_points", "absolute_error_sum", "squared_error_sum")
    predictions = sa.table(
        "predictions",
        sa.column("id", sa.Uuid()),
        sa.column("outputs", sa.JSON()),
        sa.column("created_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
        sa.column("first_ts", sa.DateTime()),
        sa.column("last_ts", sa.DateTime()),
        *(sa.column(name, sa.Uuid() if name == "workspace_id" else sa.JSON() if name == "input_summary" else None) for name in columns),
    )
    base = dict(zip(columns, (workspace, 1, "api", 2, 1, {}, 1.0, 0, 0.0, 0.0), strict=True)) | {"created_at": moment, "updated_at": moment}
    outputs = [{"timestamp": "2026-01-10T03:00:00+02:00", "value": 1.0}, {"timestamp": "2026-01-10T00:00:00", "value": 2.0}]
    engine = create_engine(fresh_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(workspaces.insert().values(id=workspace, name="w", created_at=moment, updated_at=moment))
            connection.execute(predictions.insert(), [{**base, "id": spanned, "outputs": outputs}, {**base, "id": empty, "outputs": []}])
        migrations.upgrade(fresh_database_url)
        with engine.connect() as connection:
            spans = {row.id: (row.first_ts, row.last_ts) for row in connection.execute(sa.select(predictions.c.id, predictions.c.first_ts, predictions.c.last_ts))}
    finally:
        engine.dispose()
    assert spans == {spanned: (datetime(2026, 1, 10, 0, 0), datetime(2026, 1, 10, 1, 0)), empty: (None, None)}


def test_0020_gives_each_model_the_longest_span_of_its_unscored_predictions(fresh_database_url: str) -> None:
    """Only predictions with points left to score count: a longer one already scored
    bounds nothing. A model without any keeps no span (scoring is then unbounded)."""
    migrations.upgrade(fresh_database_url, "0019")
    workspace, spanned, bare = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    moment = datetime(2026, 1, 1)
    stamps = {"created_at": moment, "updated_at": moment}
    workspaces = sa.table("workspaces", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("created_at", sa.DateTime()), sa.column("updated_at", sa.DateTime()))
    model_columns = ("id", "workspace_id", "kind", "name", "algorithm", "hyperparameters", "config", "status", "metrics", "created_at", "updated_at", "longest_forecast_seconds")
    models = sa.table("models", *(sa.column(name, sa.Uuid() if name.endswith("id") else sa.JSON() if name in ("hyperparameters", "config", "metrics") else None) for name in model_columns))
    prediction_columns = ("id", "workspace_id", "model_id", "model_version", "source", "horizon", "series_count", "input_summary", "outputs", "first_ts", "last_ts", "latency_ms")
    predictions = sa.table(
        "predictions",
        sa.column("created_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
        sa.column("scored_points"),
        sa.column("absolute_error_sum"),
        sa.column("squared_error_sum"),
        *(sa.column(name, sa.Uuid() if name.endswith("id") else sa.JSON() if name in ("input_summary", "outputs") else sa.DateTime() if name.endswith("_ts") else None) for name in prediction_columns),
    )

    def prediction(hours: int, scored: int) -> dict[str, object]:
        values = (uuid.uuid4(), workspace, spanned, 1, "api", hours + 1, 1, {}, [], moment, datetime(2026, 1, 1, hours), 1.0)
        return dict(zip(prediction_columns, values, strict=True)) | stamps | {"scored_points": scored, "absolute_error_sum": 0.0, "squared_error_sum": 0.0}

    engine = create_engine(fresh_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(workspaces.insert().values(id=workspace, name="w", **stamps))
            for model_id in (spanned, bare):
                model = {"id": model_id, "workspace_id": workspace, "kind": "forecaster", "name": "m", "algorithm": "naive", "hyperparameters": {}, "config": {}}
                connection.execute(models.insert().values(**model, status="trained", metrics={}, **stamps))
            # Unscored spans of 5 and 3 hours; a fully scored one of 20 hours.
            connection.execute(predictions.insert(), [prediction(5, 0), prediction(3, 2), prediction(20, 21)])
        migrations.upgrade(fresh_database_url)
        with engine.connect() as connection:
            longest = dict(connection.execute(sa.select(models.c.id, models.c.longest_forecast_seconds)).all())
    finally:
        engine.dispose()
    assert longest == {spanned: 5 * 3600.0, bare: None}
