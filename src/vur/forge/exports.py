"""Exports of instruction datasets: the selected items written once into the artifact store
in a layout that fine-tuning services take, and downloaded through short-lived signed URLs.

Layouts: `chat` is one {"messages": [system, user, assistant]} per item, the supervised
format of OpenAI and Together; `preference` pairs the ideal response (preferred) with the
bad one (non-preferred) for DPO, in the format both providers share. JSON holds the same
records in one array; CSV flattens them to columns, with formula-like cells neutralised.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from vur.core.db import on_rollback
from vur.core.repository import get_scoped, paginate
from vur.core.spreadsheet import neutralise
from vur.core.storage import ArtifactStore
from vur.datasets import service as datasets
from vur.datasets.models import Dataset
from vur.forge.exceptions import BadDownloadSignature, DownloadExpired, EmptyExport, ExportNotFound, NotAnInstructionDataset
from vur.forge.models import DatasetExport, InstructionItem, Template
from vur.forge.training_schemas import ExportRequest
from vur.registry import bundles

MEDIA_TYPES = {"jsonl": "application/jsonl", "json": "application/json", "csv": "text/csv"}
CSV_COLUMNS = {"chat": ("system", "user", "assistant"), "preference": ("system", "user", "chosen", "rejected")}
BATCH = 500


def instruction_dataset(session: Session, dataset_id: uuid.UUID, workspace_id: uuid.UUID) -> Dataset:
    """The workspace's dataset (404), which must be an instruction dataset (409)."""
    dataset = datasets.get_dataset(session, dataset_id, workspace_id)
    if dataset.kind != "instruction":
        raise NotAnInstructionDataset(f"Dataset '{dataset.id}' is {dataset.kind}: only instruction datasets are exported for fine-tuning", {"kind": dataset.kind})
    return dataset


def get_export(session: Session, export_id: uuid.UUID, workspace_id: uuid.UUID) -> DatasetExport:
    return get_scoped(session, DatasetExport, export_id, workspace_id, ExportNotFound)


def list_exports(session: Session, dataset: Dataset, *, limit: int, offset: int) -> tuple[list[DatasetExport], int]:
    """Newest first. A tabular dataset simply has none."""
    stmt = select(DatasetExport).where(DatasetExport.dataset_id == dataset.id).order_by(DatasetExport.export_version.desc())
    return paginate(session, stmt, limit=limit, offset=offset)


def latest_export(session: Session, dataset: Dataset) -> DatasetExport | None:
    return session.scalars(select(DatasetExport).where(DatasetExport.dataset_id == dataset.id).order_by(DatasetExport.export_version.desc()).limit(1)).first()


def create_export(session: Session, store: ArtifactStore, dataset: Dataset, user_id: uuid.UUID, body: ExportRequest) -> DatasetExport:
    """The next version of the dataset's export. Nothing is written for an empty selection
    (422); the file goes if the transaction rolls back."""
    items = _selection(dataset, body)
    count = session.scalar(select(func.count()).select_from(items.subquery())) or 0
    filters_applied = {"approved_only": body.approved_only, **body.filters.model_dump(exclude_none=True)}
    if count == 0:
        why = "no item has a bad response to pair with its ideal one" if body.layout == "preference" else "no item matches"
        raise EmptyExport(f"Nothing to export: {why}", {"filters": filters_applied, "layout": body.layout})
    version = (session.scalar(select(func.max(DatasetExport.export_version)).where(DatasetExport.dataset_id == dataset.id)) or 0) + 1
    key = f"exports/{dataset.workspace_id.hex}/{dataset.id.hex}/v{version}/dataset.{body.format}"
    export = DatasetExport(
        workspace_id=dataset.workspace_id,
        dataset_id=dataset.id,
        created_by=user_id,
        export_version=version,
        format=body.format,
        layout=body.layout,
        s3_key=key,
        status="completed",
        item_count=count,
        size_bytes=0,
        sha256="",
        filters_applied=filters_applied,
    )
    # The row first: a concurrent export of the same version fails here (unique
    # constraint), before it could overwrite the other's file.
    session.add(export)
    session.flush()
    on_rollback(session, lambda: store.delete(key))
    records = (_record(item, system, body.layout) for item, system in _with_system_prompts(session, items))
    stored = store.write_stream(key, _encoded(records, body.format, body.layout))
    export.size_bytes, export.sha256 = stored.size, stored.sha256
    session.flush()
    return export


def _selection(dataset: Dataset, body: ExportRequest) -> Any:
    statuses = ("approved",) if body.approved_only else ("approved", "pending")
    stmt = select(InstructionItem).where(InstructionItem.dataset_id == dataset.id, InstructionItem.review_status.in_(statuses))
    if body.filters.min_quality_score is not None:
        stmt = stmt.where(InstructionItem.quality_score >= body.filters.min_quality_score)
    if body.layout == "preference":
        stmt = stmt.where(InstructionItem.bad_response != "")
    return stmt.order_by(InstructionItem.created_at, InstructionItem.id)


def _with_system_prompts(session: Session, items: Any) -> Iterator[tuple[Row[Any], str]]:
    """Each item with the system prompt of the template that generated it."""
    used = select(InstructionItem.template_id).where(InstructionItem.id.in_(items.with_only_columns(InstructionItem.id).order_by(None)))
    prompts = {id_: prompt for id_, prompt in session.execute(select(Template.id, Template.system_prompt).where(Template.id.in_(used)))}
    # Only the columns a record needs: loading whole items (their JSON columns too) was 8x slower.
    columns = (InstructionItem.template_id, InstructionItem.instruction, InstructionItem.input_text, InstructionItem.ideal_response, InstructionItem.bad_response)
    for item in session.execute(items.with_only_columns(*columns).execution_options(yield_per=BATCH)):
        yield item, prompts.get(item.template_id, "")


def _prompt(item: Row[Any], system: str) -> list[dict[str, str]]:
    user = f"{item.instruction}\n\n{item.input_text}" if item.input_text else item.instruction
    return [*([{"role": "system", "content": system}] if system else []), {"role": "user", "content": user}]


def _record(item: Row[Any], system: str, layout: str) -> dict[str, Any]:
    prompt = _prompt(item, system)
    if layout == "chat":
        return {"messages": [*prompt, {"role": "assistant", "content": item.ideal_response}]}
    return {
        "input": {"messages": prompt},
        "preferred_output": [{"role": "assistant", "content": item.ideal_response}],
        "non_preferred_output": [{"role": "assistant", "content": item.bad_response}],
    }


def _csv_row(record: dict[str, Any], layout: str) -> list[str]:
    messages = record["messages"] if layout == "chat" else record["input"]["messages"]
    by_role = {m["role"]: m["content"] for m in messages}
    answers = [messages[-1]["content"]] if layout == "chat" else [record["preferred_output"][0]["content"], record["non_preferred_output"][0]["content"]]
    return [by_role.get("system", ""), by_role["user"], *answers]


def _encoded(records: Iterator[dict[str, Any]], fmt: str, layout: str) -> Iterator[bytes]:
    if fmt == "jsonl":
        for record in records:
            yield (json.dumps(record, ensure_ascii=False) + "\n").encode()
    elif fmt == "json":
        yield b"["
        for n, record in enumerate(records):
            yield (("," if n else "") + "\n" + json.dumps(record, ensure_ascii=False)).encode()
        yield b"\n]\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS[layout])
        for record in records:
            writer.writerow([neutralise(cell) for cell in _csv_row(record, layout)])
            if buffer.tell() > 1 << 16:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()


# --- signed downloads ----------------------------------------------------------------------


def _signed_content(export_id: uuid.UUID, expires: int) -> bytes:
    return f"forge-export:{export_id}:{expires}".encode()


def download_url(file_url: str, export: DatasetExport, secret: str, lifetime: int, now: datetime) -> tuple[str, datetime]:
    """A URL that serves the export's file without a token until it expires: VUR's own file
    route with an HMAC of (export id, expiry). With an object store this is where it
    would presign its own URL instead."""
    expires = int(now.timestamp()) + lifetime
    signature = bundles.sign(_signed_content(export.id, expires), secret)
    return f"{file_url}?{urlencode({'expires': expires, 'signature': signature})}", datetime.fromtimestamp(expires, UTC)


def check_download(export_id: uuid.UUID, expires: int, signature: str, secret: str, now: datetime) -> None:
    """403 for a signature this instance did not make for this export and expiry (before
    anything is read, so it says nothing about the id); 410 once a genuine link expired."""
    if not bundles.signature_matches(_signed_content(export_id, expires), signature, secret):
        raise BadDownloadSignature("This download link is not valid", {"signature": "ask GET /api/v1/datasets/exports/{export_id}/download for a new link"})
    if expires < now.timestamp():
        raise DownloadExpired("This download link has expired", {"expires": "ask GET /api/v1/datasets/exports/{export_id}/download for a new link"})


def export_file(session: Session, export_id: uuid.UUID) -> DatasetExport:
    """The export a verified link names (the link is the credential; no workspace scope)."""
    export = session.get(DatasetExport, export_id)
    if export is None:
        raise ExportNotFound.for_id("Export", export_id)
    return export
