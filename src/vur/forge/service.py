"""The forge's first half: domains, documents (upload, processing into versions of
segments) and templates. No HTTP here; the processing itself is jobs.py, on the plain
functions of extract.py and segment.py."""

from __future__ import annotations

import uuid
from typing import Any, BinaryIO

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from vur.core.repository import get_scoped, paginate
from vur.core.storage import ArtifactStore
from vur.core.uploads import chunks_after, discarded_on_failure, safe_display_name
from vur.forge import extract
from vur.forge.exceptions import DocumentBusy, DocumentNotFound, DomainNotFound, InvalidTemplate, SegmentNotFound, SlugTaken, TemplateNotFound, UnsupportedDocument
from vur.forge.models import Document, DocumentVersion, Domain, Segment, Template
from vur.forge.schemas import DomainCreate, DomainUpdate, ProcessRequest, TemplateCreate, template_problems
from vur.forge.segment import Piece
from vur.jobs import service as jobs
from vur.jobs.models import Job

PROCESS_JOB = "forge.process_document"


# --- domains ------------------------------------------------------------------------------


def get_domain(session: Session, domain_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> Domain:
    return get_scoped(session, Domain, domain_id, workspace_id, DomainNotFound, for_update=for_update)


def list_domains(session: Session, workspace_id: uuid.UUID, *, active_only: bool, limit: int, offset: int) -> tuple[list[Domain], int]:
    stmt = select(Domain).where(Domain.workspace_id == workspace_id)
    if active_only:
        stmt = stmt.where(Domain.is_active.is_(True))
    return paginate(session, stmt.order_by(Domain.name, Domain.id), limit=limit, offset=offset)


def create_domain(session: Session, workspace_id: uuid.UUID, body: DomainCreate) -> Domain:
    _check_slug_free(session, workspace_id, body.slug)
    domain = Domain(workspace_id=workspace_id, **body.model_dump())
    session.add(domain)
    session.flush()
    return domain


def update_domain(session: Session, domain: Domain, body: DomainUpdate) -> Domain:
    changes = body.model_dump(exclude_unset=True)
    if "slug" in changes and changes["slug"] != domain.slug:
        _check_slug_free(session, domain.workspace_id, changes["slug"])
    for name, value in changes.items():
        setattr(domain, name, value)
    session.flush()
    return domain


def _check_slug_free(session: Session, workspace_id: uuid.UUID, slug: str) -> None:
    # The unique constraint backs this up when two requests race.
    if session.scalar(select(Domain.id).where(Domain.workspace_id == workspace_id, Domain.slug == slug)) is not None:
        raise SlugTaken(f"A domain with slug '{slug}' already exists", {"slug": "already used in this workspace"})


# --- documents ----------------------------------------------------------------------------


def get_document(session: Session, document_id: uuid.UUID, workspace_id: uuid.UUID, *, for_update: bool = False) -> Document:
    return get_scoped(session, Document, document_id, workspace_id, DocumentNotFound, for_update=for_update)


def list_documents(
    session: Session, workspace_id: uuid.UUID, *, domain_id: uuid.UUID | None, use_case: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[Document], int]:
    stmt = select(Document).where(Document.workspace_id == workspace_id)
    if domain_id is not None:
        stmt = stmt.where(Document.domain_id == domain_id)
    if use_case is not None:
        stmt = stmt.where(Document.use_case == use_case)
    if status is not None:
        stmt = stmt.where(Document.status == status)
    return paginate(session, stmt.order_by(Document.created_at.desc(), Document.id), limit=limit, offset=offset)


def create_document(
    session: Session, store: ArtifactStore, *, domain: Domain, user_id: uuid.UUID, use_case: str | None, handle: BinaryIO, filename: str | None, max_bytes: int
) -> Document:
    """Store an upload whose bytes are a PDF, a DOCX, or text. The file streams to the
    store; if anything is refused, or the transaction rolls back, it is deleted."""
    head = handle.read(extract.SNIFF_BYTES)
    file_format = _sniffed(head)
    document_id = uuid.uuid4()
    folder = f"documents/{domain.workspace_id.hex}/{document_id.hex}"
    key = f"{folder}/original.{file_format}"
    with discarded_on_failure(session, store, folder):
        stored = store.write_stream(key, chunks_after(head, handle), max_bytes=max_bytes)
        if file_format == "docx":
            try:
                extract.check_docx(store.local_path(key))
            except extract.ExtractionError as exc:
                raise UnsupportedDocument(exc.reason, exc.details) from None
    display = safe_display_name(filename)
    stem = display.rsplit(".", 1)[0] if "." in display.lstrip(".") else display
    document = Document(
        id=document_id,
        workspace_id=domain.workspace_id,
        domain_id=domain.id,
        created_by=user_id,
        use_case=use_case,
        filename=f"{stem[:240]}.{file_format}",
        original_filename=display,
        s3_key=key,
        file_format=file_format,
        content_type=extract.CONTENT_TYPES[file_format],
        file_size=stored.size,
        sha256=stored.sha256,
        status="uploaded",
        meta={},
    )
    session.add(document)
    session.flush()
    return document


def _sniffed(head: bytes) -> str:
    try:
        return extract.sniff_format(head)
    except extract.ExtractionError as exc:
        raise UnsupportedDocument(exc.reason, exc.details) from None


def start_processing(session: Session, document: Document, body: ProcessRequest, user_id: uuid.UUID) -> tuple[DocumentVersion, Job]:
    """A new version of the document, segmented by a job. A processed or failed document
    may be processed again (the next version); one being processed may not (409)."""
    if document.status == "processing":
        raise DocumentBusy(f"Document '{document.id}' is being processed", {"status": "wait until it is processed or failed"})
    latest = session.scalar(select(func.max(DocumentVersion.number)).where(DocumentVersion.document_id == document.id)) or 0
    version = DocumentVersion(
        workspace_id=document.workspace_id,
        document_id=document.id,
        number=latest + 1,
        segment_type=body.segment_type,
        segment_config=body.segment_config.model_dump(),
        status="processing",
    )
    session.add(version)
    session.flush()
    job = jobs.enqueue(session, PROCESS_JOB, {"version_id": str(version.id)}, workspace_id=document.workspace_id, created_by=user_id)
    version.job_id = job.id
    document.status, document.error = "processing", None
    session.flush()
    return version, job


def version_to_process(session: Session, version_id: uuid.UUID) -> tuple[DocumentVersion, Document]:
    version = session.get(DocumentVersion, version_id)
    document = session.get(Document, version.document_id) if version is not None else None
    if version is None or document is None:
        raise LookupError(f"document version {version_id} no longer exists")
    return version, document


def record_processed(session: Session, version_id: uuid.UUID, pieces: list[Piece], stats: dict[str, Any]) -> DocumentVersion:
    """The version's segments, in one transaction with the statuses: a reader sees all of
    them or none. The version becomes the document's current one."""
    version = session.get(DocumentVersion, version_id, with_for_update=True)
    if version is None or version.status != "processing":
        raise LookupError(f"document version {version_id} is no longer being processed")
    document = session.get(Document, version.document_id, with_for_update=True)
    assert document is not None  # a version goes only with its document (CASCADE)
    rows = [
        {
            "workspace_id": document.workspace_id,
            "domain_id": document.domain_id,
            "document_id": document.id,
            "document_version_id": version.id,
            "use_case": document.use_case,
            "segment_type": version.segment_type,
            "content": piece.content,
            "position": position,
            "meta": piece.metadata,
        }
        for position, piece in enumerate(pieces)
    ]
    if rows:
        session.execute(insert(Segment), rows)
    version.status, version.segment_count, version.stats = "processed", len(rows), stats
    document.status, document.error = "processed", None
    document.current_version_id, document.current_version = version.id, version.number
    document.meta = {**stats, "segment_type": version.segment_type, "segment_count": len(rows)}
    session.flush()
    return version


def record_failure(session: Session, version_id: uuid.UUID, reason: str) -> None:
    version = session.get(DocumentVersion, version_id, with_for_update=True)
    if version is not None and version.status == "processing":
        _fail(session, version, reason)


def _fail(session: Session, version: DocumentVersion, reason: str) -> None:
    version.status, version.error = "failed", reason
    document = session.get(Document, version.document_id)
    if document is not None and document.status == "processing":
        # The segments of the current version, if any, stay the document's.
        document.status, document.error = "failed", reason
    session.flush()


def processing_ended_unfinished(session: Session, job: Job) -> None:
    """The job ended failed or cancelled without recording why (its worker died, a cancel
    stopped it, an unexpected error): the version and the document fail with the job's error."""
    version = session.get(DocumentVersion, uuid.UUID(job.payload["version_id"]))
    if version is not None and version.status == "processing":
        _fail(session, version, job.error or "the processing job failed")


# --- segments -----------------------------------------------------------------------------


def get_segment(session: Session, segment_id: uuid.UUID, workspace_id: uuid.UUID) -> Segment:
    return get_scoped(session, Segment, segment_id, workspace_id, SegmentNotFound)


def list_segments(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    domain_id: uuid.UUID | None,
    document_id: uuid.UUID | None,
    document_version_id: uuid.UUID | None,
    use_case: str | None,
    segment_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Segment], int]:
    """Segments of each document's current version, in document order; or of the one
    version asked for."""
    stmt = segments_query(
        workspace_id, domain_id=domain_id, document_id=document_id, document_version_id=document_version_id, use_case=use_case, segment_type=segment_type
    )
    return paginate(session, stmt.order_by(Document.created_at.desc(), Document.id, Segment.position), limit=limit, offset=offset)


def segments_query(
    workspace_id: uuid.UUID,
    *,
    domain_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    document_version_id: uuid.UUID | None = None,
    use_case: str | None = None,
    segment_type: str | None = None,
) -> Select[tuple[Segment]]:
    """The segments that the listing and generation select from (joined with their document)."""
    stmt = select(Segment).join(Document, Document.id == Segment.document_id).where(Segment.workspace_id == workspace_id)
    if document_version_id is not None:
        stmt = stmt.where(Segment.document_version_id == document_version_id)
    else:
        stmt = stmt.where(Segment.document_version_id == Document.current_version_id)
    for column, value in ((Segment.domain_id, domain_id), (Segment.document_id, document_id), (Segment.use_case, use_case), (Segment.segment_type, segment_type)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


# --- templates ----------------------------------------------------------------------------


def get_template(session: Session, template_id: uuid.UUID, workspace_id: uuid.UUID) -> Template:
    return get_scoped(session, Template, template_id, workspace_id, TemplateNotFound)


def list_templates(session: Session, workspace_id: uuid.UUID, *, domain_id: uuid.UUID | None, use_case: str | None, limit: int, offset: int) -> tuple[list[Template], int]:
    stmt = select(Template).where(Template.workspace_id == workspace_id, Template.is_active.is_(True))
    if domain_id is not None:
        stmt = stmt.where(Template.domain_id == domain_id)
    if use_case is not None:
        stmt = stmt.where(Template.use_case == use_case)
    return paginate(session, stmt.order_by(Template.created_at.desc(), Template.id), limit=limit, offset=offset)


def create_template(session: Session, workspace_id: uuid.UUID, body: TemplateCreate) -> Template:
    problems = template_problems(body.user_prompt_template, body.variables)
    if problems:
        raise InvalidTemplate("The user prompt template cannot be used", problems)
    get_domain(session, body.domain_id, workspace_id)
    template = Template(workspace_id=workspace_id, **body.model_dump())
    session.add(template)
    session.flush()
    return template
