from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile

from vur.core.deps import AppSettings, DbSession, Store
from vur.core.pagination import PageParams, set_total
from vur.forge import service
from vur.forge.schemas import (
    DocumentRead,
    DocumentStatus,
    DomainCreate,
    DomainRead,
    DomainUpdate,
    ProcessAccepted,
    ProcessRequest,
    SegmentRead,
    SegmentType,
    TemplateCreate,
    TemplateRead,
)
from vur.identity.auth import WorkspaceReader, WorkspaceWriter

router = APIRouter(prefix="/api/v1", tags=["forge"])
# Mounted with the upload size limit instead of the JSON body limit.
upload_router = APIRouter(prefix="/api/v1", tags=["forge"])

UseCase = Annotated[str | None, Query(max_length=100, description="Use case, e.g. chat-training")]


# --- domains ------------------------------------------------------------------------------


@router.post("/domains", response_model=DomainRead, status_code=201, summary="Create a business domain (slug unique in the workspace, 409 otherwise)")
def create_domain(body: DomainCreate, principal: WorkspaceWriter, session: DbSession) -> DomainRead:
    return DomainRead.model_validate(service.create_domain(session, principal.workspace_id, body))


@router.get("/domains", response_model=list[DomainRead], summary="Domains of the workspace, by name (active ones only unless active_only=false)")
def list_domains(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, active_only: bool = True) -> list[DomainRead]:
    rows, total = service.list_domains(session, principal.workspace_id, active_only=active_only, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [DomainRead.model_validate(row) for row in rows]


@router.get("/domains/{domain_id}", response_model=DomainRead, summary="One domain")
def get_domain(domain_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> DomainRead:
    return DomainRead.model_validate(service.get_domain(session, domain_id, principal.workspace_id))


@router.put("/domains/{domain_id}", response_model=DomainRead, summary="Change a domain: only the fields given")
def update_domain(domain_id: uuid.UUID, body: DomainUpdate, principal: WorkspaceWriter, session: DbSession) -> DomainRead:
    domain = service.get_domain(session, domain_id, principal.workspace_id, for_update=True)
    return DomainRead.model_validate(service.update_domain(session, domain, body))


# --- documents ----------------------------------------------------------------------------


@upload_router.post(
    "/documents/upload",
    response_model=DocumentRead,
    status_code=201,
    summary="Upload a PDF, DOCX, TXT or Markdown document (the type is recognised from the bytes; 422 for anything else, 413 over the size limit)",
)
def upload_document(
    principal: WorkspaceWriter,
    session: DbSession,
    store: Store,
    settings: AppSettings,
    file: Annotated[UploadFile, File(description="PDF, DOCX, TXT or Markdown")],
    domain_id: Annotated[uuid.UUID, Query(description="The domain the document belongs to")],
    use_case: UseCase = None,
) -> DocumentRead:
    domain = service.get_domain(session, domain_id, principal.workspace_id)
    document = service.create_document(
        session, store, domain=domain, user_id=principal.user_id, use_case=use_case, handle=file.file, filename=file.filename, max_bytes=settings.max_upload_bytes
    )
    return DocumentRead.model_validate(document)


@router.get("/documents", response_model=list[DocumentRead], summary="Documents of the workspace, newest first")
def list_documents(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    domain_id: uuid.UUID | None = None,
    use_case: UseCase = None,
    status: DocumentStatus | None = None,
) -> list[DocumentRead]:
    rows, total = service.list_documents(session, principal.workspace_id, domain_id=domain_id, use_case=use_case, status=status, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [DocumentRead.model_validate(row) for row in rows]


@router.get("/documents/{document_id}", response_model=DocumentRead, summary="One document: its status, the reason it failed, its current version")
def get_document(document_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> DocumentRead:
    return DocumentRead.model_validate(service.get_document(session, document_id, principal.workspace_id))


@router.post(
    "/documents/{document_id}/process",
    response_model=ProcessAccepted,
    status_code=202,
    summary="Extract the text and segment it into a new version of the document, in the background (409 while it is being processed)",
)
def process_document(document_id: uuid.UUID, body: ProcessRequest, principal: WorkspaceWriter, session: DbSession) -> ProcessAccepted:
    document = service.get_document(session, document_id, principal.workspace_id, for_update=True)
    version, job = service.start_processing(session, document, body, principal.user_id)
    return ProcessAccepted(status="processing", version_id=version.id, job_id=job.id)


# --- segments -----------------------------------------------------------------------------


@router.get("/segments", response_model=list[SegmentRead], summary="Segments of the documents' current versions (or of one version), in document order")
def list_segments(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    domain_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    document_version_id: Annotated[uuid.UUID | None, Query(description="A version other than the current one")] = None,
    use_case: UseCase = None,
    segment_type: SegmentType | None = None,
) -> list[SegmentRead]:
    rows, total = service.list_segments(
        session,
        principal.workspace_id,
        domain_id=domain_id,
        document_id=document_id,
        document_version_id=document_version_id,
        use_case=use_case,
        segment_type=segment_type,
        limit=page.limit,
        offset=page.offset,
    )
    set_total(response, total)
    return [SegmentRead.model_validate(row) for row in rows]


@router.get("/segments/{segment_id}", response_model=SegmentRead, summary="One segment")
def get_segment(segment_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> SegmentRead:
    return SegmentRead.model_validate(service.get_segment(session, segment_id, principal.workspace_id))


# --- templates ----------------------------------------------------------------------------


@router.post("/templates", response_model=TemplateRead, status_code=201, summary="Create a generation template ({content} required; other placeholders declared in variables)")
def create_template(body: TemplateCreate, principal: WorkspaceWriter, session: DbSession) -> TemplateRead:
    return TemplateRead.model_validate(service.create_template(session, principal.workspace_id, body))


@router.get("/templates", response_model=list[TemplateRead], summary="Active templates of the workspace, newest first")
def list_templates(
    principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, domain_id: uuid.UUID | None = None, use_case: UseCase = None
) -> list[TemplateRead]:
    rows, total = service.list_templates(session, principal.workspace_id, domain_id=domain_id, use_case=use_case, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [TemplateRead.model_validate(row) for row in rows]


@router.get("/templates/{template_id}", response_model=TemplateRead, summary="One template")
def get_template(template_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> TemplateRead:
    return TemplateRead.model_validate(service.get_template(session, template_id, principal.workspace_id))
