"""The forge's jobs. Processing: extract a document's text, segment it, and record the
segments as a new version of the document, in one transaction. Generation: ask the
dataset's provider for an item per segment and store them in batches."""

from __future__ import annotations

import uuid
from typing import Any

from vur.core.db import get_database
from vur.core.storage import LocalArtifactStore
from vur.forge import generation, instruction, service
from vur.forge.extract import ExtractionError, extract
from vur.forge.providers import CallPolicy
from vur.forge.segment import SegmentationError, segment
from vur.jobs.registry import job
from vur.jobs.runner import JobContext


class ProcessingFailed(Exception):
    """Ends the job with the reason already recorded on the version and the document."""


class GenerationFailed(Exception):
    """Ends the job with the reason already recorded in the dataset's generation report."""


@job(service.PROCESS_JOB, on_unsuccessful=service.processing_ended_unfinished)
def process_document(ctx: JobContext, version_id: str) -> dict[str, Any]:
    database = get_database(ctx.settings.resolved_database_url)
    store = LocalArtifactStore(ctx.settings.artifacts_dir)
    target = uuid.UUID(version_id)
    with database.session() as session:
        version, document = service.version_to_process(session, target)
        path, file_format = store.local_path(document.s3_key), document.file_format
        segment_type, config = version.segment_type, version.segment_config
    ctx.progress(5, f"extracting the text of the {file_format.upper()}")
    try:
        extracted = extract(path, file_format)
        ctx.progress(60, f"segmenting {len(extracted.text):,} characters into {segment_type}")
        pieces = segment(extracted.text, segment_type, max_length=config["max_length"], overlap=config["overlap"], page_starts=extracted.page_starts)
    except (ExtractionError, SegmentationError) as exc:
        with database.session() as session:
            service.record_failure(session, target, exc.reason)
        raise ProcessingFailed(exc.reason) from exc
    ctx.progress(90, f"saving {len(pieces):,} segments")
    stats = {"characters": len(extracted.text), **({"pages": extracted.pages} if extracted.pages is not None else {})}
    with database.session() as session:
        version = service.record_processed(session, target, pieces, stats)
        return {"version_id": version_id, "version": version.number, "segment_count": version.segment_count}


# Safe to run again: a re-run skips the segments that already have an item.
@job(instruction.GENERATE_JOB, retry_safe=True, max_attempts=2, on_unsuccessful=instruction.generation_ended_unfinished)
def generate(ctx: JobContext, dataset_id: str, segment_ids: list[str] | None, max_items: int | None, batch_size: int) -> dict[str, Any]:
    import asyncio

    database = get_database(ctx.settings.resolved_database_url)
    target = uuid.UUID(dataset_id)
    with database.session() as session:
        plan = instruction.generation_plan(session, ctx.settings, target, segment_ids, max_items)
    ctx.progress(1, f"generating items from {len(plan.segments):,} segments with {plan.provider} ({plan.model})")

    def store(rows: list[dict[str, Any]]) -> int:
        with database.session() as session:
            return instruction.store_items(session, target, rows)

    def progress(done: int, total: int) -> None:
        ctx.progress(1 + 98 * done / max(total, 1), f"{done:,} of {total:,} segments done")

    report = asyncio.run(
        generation.run(plan, CallPolicy.of(ctx.settings), concurrency=ctx.settings.forge_generation_concurrency, batch_size=batch_size, store=store, progress=progress)
    )
    with database.session() as session:
        instruction.finish_generation(session, target, report.as_dict())
    # Nothing came of the run: the job fails with the reason (the report keeps every one).
    if report.fatal or (report.failures and not report.created):
        raise GenerationFailed(report.fatal or f"no item could be generated: {report.failures[0]['reason']}")
    return {"dataset_id": dataset_id, "items_created": report.created, "failed": len(report.failures)}
