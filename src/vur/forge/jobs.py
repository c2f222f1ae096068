"""The processing job: extract a document's text, segment it, and record the segments as
a new version of the document, in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from vur.core.db import get_database
from vur.core.storage import LocalArtifactStore
from vur.forge import service
from vur.forge.extract import ExtractionError, extract
from vur.forge.segment import SegmentationError, segment
from vur.jobs.registry import job
from vur.jobs.runner import JobContext


class ProcessingFailed(Exception):
    """Ends the job with the reason already recorded on the version and the document."""


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
