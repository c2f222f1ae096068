from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from vur.core.deps import DbSession
from vur.core.pagination import PageParams, set_total
from vur.identity.auth import WorkspaceReader, WorkspaceWriter
from vur.jobs import service
from vur.jobs.models import JobStatus
from vur.jobs.schemas import JobRead

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[JobRead], summary="Jobs of the workspace, newest first")
def list_jobs(
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    status: JobStatus | None = None,
    type: str | None = None,
) -> list[JobRead]:
    jobs, total = service.list_jobs(session, principal.workspace_id, status=status, type_=type, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [JobRead.model_validate(job) for job in jobs]


@router.get("/{job_id}", response_model=JobRead, summary="One job: status, progress, log, result")
def get_job(job_id: uuid.UUID, principal: WorkspaceReader, session: DbSession) -> JobRead:
    return JobRead.model_validate(service.get_job(session, job_id, principal.workspace_id))


@router.post("/{job_id}/cancel", response_model=JobRead, summary="Cancel a queued job, or ask a running one to stop")
def cancel_job(job_id: uuid.UUID, principal: WorkspaceWriter, session: DbSession) -> JobRead:
    job = service.get_job(session, job_id, principal.workspace_id)
    return JobRead.model_validate(service.request_cancel(session, job))
