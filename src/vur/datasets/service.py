"""Tabular datasets: ingest an upload once into typed Parquet, then read only that.

Polars (and the modules built on it) are imported inside the functions that use them:
the API process starts without loading them.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from vur.core.db import on_commit
from vur.core.repository import contains, get_scoped, paginate
from vur.core.spreadsheet import FORMULA_START
from vur.core.storage import ArtifactStore
from vur.core.uploads import chunks_after, discarded_on_failure, safe_display_name
from vur.datasets.exceptions import DatasetInUse, DatasetNotFound, InvalidDatasetConfig, InvalidPreprocessing, InvalidQuery, UnreadableFile
from vur.datasets.models import Dataset
from vur.registry.models import RegisteredModel

if TYPE_CHECKING:
    import polars as pl

    from vur.datasets.ingest import TableProfile
    from vur.datasets.schemas import PreprocessRequest

_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "xlsx": ".xlsx"}


def create_from_upload(
    session: Session,
    store: ArtifactStore,
    *,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    handle: BinaryIO,
    filename: str | None,
    name: str | None,
    description: str | None,
    max_bytes: int,
) -> Dataset:
    from vur.datasets import ingest

    head = handle.read(ingest.SAMPLE_BYTES)
    if not head:
        raise UnreadableFile("The file is empty", {"file": "0 bytes"})
    file_format = ingest.sniff_format(head)
    dataset_id = uuid.uuid4()
    folder = dataset_folder(workspace_id, dataset_id)
    original_key, parquet_key = f"{folder}/original{_SUFFIX[file_format]}", f"{folder}/data.parquet"
    with discarded_on_failure(session, store, folder):
        stored = store.write_stream(original_key, chunks_after(head, handle), max_bytes=max_bytes)
        original = store.local_path(original_key)
        warnings: list[dict[str, Any]] = []
        parquet = store.write_from(parquet_key, lambda out: warnings.extend(ingest.write_typed_parquet(original, file_format, out, max_uncompressed=4 * max_bytes)))
        table = ingest.profile_table(scan_parquet(store, parquet_key))
        if not table.columns or table.rows == 0:
            raise UnreadableFile("The file has no data rows", {"rows": 0})

    display = safe_display_name(filename)
    dataset = Dataset(
        id=dataset_id,
        workspace_id=workspace_id,
        created_by=user_id,
        kind="tabular",
        name=name or display.rsplit(".", 1)[0] or display,
        description=description,
        filename=display,
        file_format=file_format,
        size_bytes=stored.size,
        stored_bytes=stored.size + parquet.size,
        sha256=stored.sha256,
        rows_count=table.rows,
        columns=table.columns,
        detected_types=table.types,
        suggestions=table.suggestions,
        frequency=table.frequency,
        ingest_warnings=warnings,
        config={k: table.suggestions[k] for k in ("date_column", "target_column", "series_id_column")},
        original_key=original_key,
        parquet_key=parquet_key,
    )
    session.add(dataset)
    session.flush()
    return dataset


def target_restoration(session: Session, dataset: Dataset, column: str) -> list[dict[str, float]]:
    """How to bring `column` back to the units it was uploaded in: the normalizations
    applied to it along the dataset's lineage, newest first, each undone as
    `x = y * scale + center`. Empty when it was never rescaled."""
    undo: list[dict[str, float]] = []
    current: Dataset | None = dataset
    while current is not None:
        for step in reversed(current.steps or []):
            if step["step"] == "normalization" and column in step["columns"]:
                fitted = step["params"][column]
                undo.append({"scale": float(fitted["scale"]), "center": float(fitted["center"])})
        current = session.get(Dataset, current.parent_id) if current.parent_id else None
    return undo


def dataset_folder(workspace_id: uuid.UUID, dataset_id: uuid.UUID) -> str:
    return f"datasets/{workspace_id.hex}/{dataset_id.hex}"


def get_dataset(session: Session, dataset_id: uuid.UUID, workspace_id: uuid.UUID) -> Dataset:
    return get_scoped(session, Dataset, dataset_id, workspace_id, DatasetNotFound)


def list_datasets(
    session: Session, workspace_id: uuid.UUID, *, kind: str | None, search: str | None, limit: int, offset: int, only: Select[tuple[uuid.UUID]] | None = None
) -> tuple[list[Dataset], int]:
    """`only`: a query of the ids to keep (another domain's filter, e.g. the forge's domain)."""
    stmt = select(Dataset).where(Dataset.workspace_id == workspace_id)
    if kind is not None:
        stmt = stmt.where(Dataset.kind == kind)
    if only is not None:
        stmt = stmt.where(Dataset.id.in_(only))
    if search:
        stmt = stmt.where(contains(Dataset.name, search) | contains(Dataset.filename, search))
    return paginate(session, stmt.order_by(Dataset.created_at.desc()), limit=limit, offset=offset)


def load_frame(store: ArtifactStore, dataset: Dataset, columns: list[str] | None = None) -> pl.DataFrame:
    import polars as pl

    with store.open(parquet_key(dataset)) as handle:
        return pl.read_parquet(handle, columns=columns)


def scan_parquet(store: ArtifactStore, key: str) -> pl.LazyFrame:
    import polars as pl

    return pl.scan_parquet(store.local_path(key))


# --- reading -----------------------------------------------------------------

FILTER_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le", "contains"}


def _parse_filter(raw: str, schema: pl.Schema) -> pl.Expr:
    import polars as pl

    column, _, rest = raw.partition(":")
    operator, _, value = rest.partition(":")
    if column not in schema:
        raise InvalidQuery(f"Unknown column '{column}' in filter", {"filter": raw})
    if operator not in FILTER_OPERATORS:
        raise InvalidQuery(f"Unknown filter operator '{operator}'", {"filter": f"use column:op:value with op in {sorted(FILTER_OPERATORS)}"})
    dtype = schema[column]
    target = pl.col(column)
    if operator == "contains":
        return target.cast(pl.String).str.contains(value, literal=True)
    try:
        literal: Any = float(value) if dtype.is_numeric() else pl.Series([value]).str.to_datetime(strict=True)[0] if dtype.is_temporal() else value
    except (ValueError, pl.exceptions.PolarsError):
        raise InvalidQuery(f"'{value}' is not a valid value for column '{column}'", {"filter": raw}) from None
    return {"eq": target == literal, "ne": target != literal, "gt": target > literal, "ge": target >= literal, "lt": target < literal, "le": target <= literal}[operator]


def preview(
    store: ArtifactStore,
    dataset: Dataset,
    *,
    page: int,
    limit: int,
    columns: list[str] | None,
    sort: str | None,
    descending: bool,
    filters: list[str],
) -> dict[str, Any]:
    """One page of rows, read lazily from the Parquet (only the needed columns and rows)."""
    import polars as pl

    scan = scan_parquet(store, parquet_key(dataset))
    schema = scan.collect_schema()
    if columns:
        unknown = [c for c in columns if c not in schema]
        if unknown:
            raise InvalidQuery("Unknown columns requested", {"columns": unknown})
    if sort is not None and sort not in schema:
        raise InvalidQuery(f"Unknown sort column '{sort}'", {"sort": sort})
    for expression in [_parse_filter(raw, schema) for raw in filters]:
        scan = scan.filter(expression)
    if sort is not None:
        scan = scan.sort(sort, descending=descending, nulls_last=True)
    total = dataset.rows_count if not filters else scan.select(pl.len()).collect().item()
    selected = columns or list(schema)
    rows = scan.select(selected).slice((page - 1) * limit, limit).collect()
    return {
        "dataset_id": dataset.id,
        "page": page,
        "limit": limit,
        "total_rows": total,
        "total_pages": max(1, -(-total // limit)),
        "columns": selected,
        "rows": rows.to_dicts(),
    }


def statistics(store: ArtifactStore, dataset: Dataset) -> dict[str, Any]:
    """Computed once per configuration and kept beside the data."""
    from vur.datasets import profile

    digest = hashlib.sha256(json.dumps(dataset.config, sort_keys=True).encode()).hexdigest()[:12]
    key = f"{dataset_folder(dataset.workspace_id, dataset.id)}/statistics-{digest}.json"
    if store.exists(key):
        with store.open(key) as handle:
            return json.load(handle)
    result = profile.dataset_statistics(scan_parquet(store, parquet_key(dataset)), dataset.detected_types, dataset.config, dataset.frequency)
    store.write_bytes(key, json.dumps(result, default=str).encode())
    return result


def parquet_key(dataset: Dataset) -> str:
    if dataset.parquet_key is None:
        raise UnreadableFile("This dataset has no tabular data", {"kind": dataset.kind})
    return dataset.parquet_key


def export_csv(store: ArtifactStore, dataset: Dataset) -> str:
    """A CSV copy of the typed data. Text cells that a spreadsheet would run as a formula
    (=, +, -, @) are prefixed with a quote so that they stay text (CSV injection)."""
    import polars as pl

    key = f"{dataset_folder(dataset.workspace_id, dataset.id)}/export.csv"
    if not store.exists(key):
        frame = load_frame(store, dataset)
        safe = frame.with_columns(
            pl.when(pl.col(c).str.contains(FORMULA_START)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
            for c, dtype in frame.schema.items()
            if dtype == pl.String
        )
        buffer = io.BytesIO()
        safe.write_csv(buffer)
        store.write_bytes(key, buffer.getvalue())
    return key


# --- changing ----------------------------------------------------------------


def update_config(session: Session, store: ArtifactStore, dataset: Dataset, changes: dict[str, Any]) -> Dataset:
    from vur.datasets import ingest

    columns, types = set(dataset.columns), dataset.detected_types
    problems: dict[str, str] = {}
    for field in ("date_column", "target_column", "series_id_column"):
        name = changes.get(field)
        if name is not None and name not in columns:
            problems[field] = f"'{name}' is not a column of the dataset"
    for field in ("feature_columns", "exclude_columns"):
        unknown = [c for c in changes.get(field) or [] if c not in columns]
        if unknown:
            problems[field] = f"not columns of the dataset: {unknown}"
    date, target = changes.get("date_column"), changes.get("target_column")
    if date in columns and types.get(date) != "datetime":
        problems["date_column"] = f"'{date}' is {types.get(date)}, not parseable timestamps"
    if target in columns and types.get(target) != "numeric":
        problems["target_column"] = f"'{target}' is {types.get(target)}, not numeric"
    roles = [changes.get(f) for f in ("date_column", "target_column", "series_id_column") if changes.get(f)]
    if len(roles) != len(set(roles)):
        problems["columns"] = "date, target and series id must be different columns"
    overlap = set(roles) & set(changes.get("exclude_columns") or [])
    if overlap:
        problems["exclude_columns"] = f"cannot exclude a column that has a role: {sorted(overlap)}"
    if target is not None and target in (changes.get("feature_columns") or []):
        problems["feature_columns"] = "the target cannot also be a feature"
    if problems:
        raise InvalidDatasetConfig("The configuration does not fit this dataset", problems)
    if date is not None and date != dataset.config.get("date_column"):
        dataset.frequency = ingest.infer_frequency(load_frame(store, dataset, [date])[date])
    dataset.config = {**dataset.config, **changes}
    session.flush()
    return dataset


def validate(store: ArtifactStore, dataset: Dataset, horizon: int, season_length: int) -> dict[str, Any]:
    from vur.datasets import profile

    frame = load_frame(store, dataset)
    return profile.forecasting_report(frame, dataset.detected_types, dataset.config, dataset.frequency, horizon, season_length)


def delete_dataset(session: Session, store: ArtifactStore, dataset: Dataset, *, force: bool) -> None:
    users = session.scalars(select(RegisteredModel.id).where(RegisteredModel.dataset_id == dataset.id)).all()
    if users and not force:
        raise DatasetInUse(
            f"Dataset '{dataset.id}' is used by {len(users)} model(s); pass force=true to delete it anyway",
            {"models": [str(m) for m in users]},
        )
    folder = dataset_folder(dataset.workspace_id, dataset.id)
    session.delete(dataset)
    session.flush()
    on_commit(session, lambda: store.delete_prefix(folder))


def usage(session: Session, workspace_id: uuid.UUID, recent: int = 5) -> dict[str, Any]:
    scoped = select(Dataset).where(Dataset.workspace_id == workspace_id)
    by_kind = dict(session.execute(select(Dataset.kind, func.count()).where(Dataset.workspace_id == workspace_id).group_by(Dataset.kind)).all())
    stored = session.scalar(select(func.coalesce(func.sum(Dataset.stored_bytes), 0)).where(Dataset.workspace_id == workspace_id))
    return {
        "stored_bytes": int(stored or 0),
        "datasets_count": sum(by_kind.values()),
        "by_kind": by_kind,
        "recent_uploads": list(session.scalars(scoped.order_by(Dataset.created_at.desc()).limit(recent)).all()),
        "recent_updates": list(session.scalars(scoped.order_by(Dataset.updated_at.desc()).limit(recent)).all()),
    }


SPLIT_PARTS = ("train", "validation", "test")
# A time_series split answers the parts of this many series (the first by id), as
# SplitResponse.series tells clients.
MAX_SPLIT_SERIES = 1000


def split(session: Session, store: ArtifactStore, dataset: Dataset, request: dict[str, Any]) -> dict[str, Any]:
    """Where each part starts and ends, overall and (time_series split of a dataset with a
    series id column) per series. A time_series split cuts every series at the same
    fractions of its own length, keeping order; a random one assigns rows with a seeded
    shuffle. The split is kept in the dataset's configuration for training to use."""
    import polars as pl

    date, series = dataset.config.get("date_column"), dataset.config.get("series_id_column")
    if request["method"] == "time_series" and not date:
        raise InvalidDatasetConfig("A time_series split needs a date column", {"date_column": "set it with PUT /config"})
    frame = load_frame(store, dataset, [c for c in (date, series) if c])
    key = pl.col(series) if series else pl.lit("all")
    if request["method"] == "time_series":
        position = pl.int_range(pl.len()).over(key, order_by=date) / pl.len().over(key)
    else:
        position = pl.int_range(pl.len()).shuffle(seed=request["seed"]) / pl.len()
    train_end, validation_end = request["train_size"], request["train_size"] + request["validation_size"]
    labelled = frame.with_columns(
        pl.when(position < train_end).then(pl.lit("train")).when(position < validation_end).then(pl.lit("validation")).otherwise(pl.lit("test")).alias("__part")
    )
    stats = labelled.group_by("__part").agg(pl.len().alias("rows"), *([pl.col(date).min().alias("start"), pl.col(date).max().alias("end")] if date else []))
    found = {row["__part"]: row for row in stats.iter_rows(named=True)}
    parts = {name: {"rows": found.get(name, {}).get("rows", 0), "start": found.get(name, {}).get("start"), "end": found.get(name, {}).get("end")} for name in SPLIT_PARTS}
    series_count = frame.select(key.n_unique()).item()
    per_series = None
    if request["method"] == "time_series" and series:
        # One row per series with each part's figures; only the first series by id are kept.
        figures = [
            figure
            for name in SPLIT_PARTS
            for figure in (
                (pl.col("__part") == name).sum().alias(f"{name}.rows"),
                pl.col(date).filter(pl.col("__part") == name).min().alias(f"{name}.start"),
                pl.col(date).filter(pl.col("__part") == name).max().alias(f"{name}.end"),
            )
        ]
        shown = labelled.lazy().group_by(series).agg(figures).sort(series, nulls_last=True).head(MAX_SPLIT_SERIES).collect()
        ids = shown[series].cast(pl.String).fill_null("null").to_list()
        per_series = {
            uid: {name: {field: row[f"{name}.{field}"] for field in ("rows", "start", "end")} for name in SPLIT_PARTS}
            for uid, row in zip(ids, shown.iter_rows(named=True), strict=True)
        }
    dataset.config = {**dataset.config, "split": request}
    session.flush()
    return {
        "dataset_id": dataset.id,
        "method": request["method"],
        "series_count": series_count,
        "parts": parts,
        "series": per_series,
        "series_truncated": per_series is not None and series_count > len(per_series),
    }


# --- preprocessing -----------------------------------------------------------

_ROLE_FIELDS = ("date_column", "target_column", "series_id_column")
_COLUMN_LIST_FIELDS = ("feature_columns", "exclude_columns")


def create_preprocessed(session: Session, store: ArtifactStore, parent: Dataset, request: PreprocessRequest, *, user_id: uuid.UUID) -> tuple[Dataset, dict[str, Any]]:
    """A new dataset made from `parent` by the requested steps, with its own Parquet; the
    parent is left as it was. The new one names its parent and keeps the applied steps
    with their fitted parameters. Also returns a summary of what changed."""
    from vur.datasets import ingest, preprocess

    result = preprocess.apply(scan_parquet(store, parquet_key(parent)), request, parent.config)
    dataset_id = uuid.uuid4()
    folder = dataset_folder(parent.workspace_id, dataset_id)
    data_key = f"{folder}/data.parquet"
    with discarded_on_failure(session, store, folder):
        parquet = store.write_from(data_key, lambda out: ingest.sink_parquet(result.frame, out, "Could not preprocess the data"))
        table = ingest.profile_table(scan_parquet(store, data_key))
        if table.rows == 0:
            raise InvalidPreprocessing("No rows are left after preprocessing", {"rows": 0})
        config = _inherited_config(parent.config, result.date_column, table.columns)
        frequency = _frequency(store, data_key, table, config.get("date_column"))

    dataset = Dataset(
        id=dataset_id,
        workspace_id=parent.workspace_id,
        created_by=user_id,
        kind="tabular",
        name=request.name or f"{parent.name} (preprocessed)"[:200],
        description=request.description,
        file_format="parquet",
        size_bytes=parquet.size,
        stored_bytes=parquet.size,
        sha256=parquet.sha256,
        rows_count=table.rows,
        columns=table.columns,
        detected_types=table.types,
        suggestions=table.suggestions,
        frequency=frequency,
        config=config,
        # Nothing was uploaded: its Parquet is also what "download the original" gives.
        original_key=data_key,
        parquet_key=data_key,
        parent_id=parent.id,
        steps=result.steps,
    )
    session.add(dataset)
    session.flush()
    summary = {
        "rows_before": parent.rows_count,
        "rows_after": table.rows,
        "columns_added": [c for c in table.columns if c not in parent.columns],
        "columns_removed": [c for c in parent.columns if c not in table.columns],
    }
    return dataset, summary


def _inherited_config(config: dict[str, Any], date_column: str | None, columns: list[str]) -> dict[str, Any]:
    """The parent's configuration without the columns that are gone; the date column the
    steps followed in time becomes the date column."""
    present = set(columns)
    inherited: dict[str, Any] = {}
    for field, value in config.items():
        if field in _ROLE_FIELDS:
            inherited[field] = value if value in present else None
        elif field in _COLUMN_LIST_FIELDS and value is not None:
            inherited[field] = [c for c in value if c in present]
        else:
            inherited[field] = value
    if date_column in present:
        inherited["date_column"] = date_column
    return inherited


def _frequency(store: ArtifactStore, parquet_key: str, table: TableProfile, date_column: str | None) -> str | None:
    from vur.datasets import ingest

    if date_column is None:
        return None
    if date_column == table.suggestions["date_column"]:
        return table.frequency
    return ingest.infer_frequency(scan_parquet(store, parquet_key).select(date_column).collect()[date_column])
