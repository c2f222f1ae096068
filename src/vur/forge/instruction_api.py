"""Routes of the forge's second half: instruction datasets and their generation, the review
queue, and the workspace's provider keys. Listing and reading datasets of both kinds is
the datasets router's (/api/v1/datasets)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from vur.core.deps import AppSettings, DbSession
from vur.core.pagination import PageParams, set_total
from vur.datasets import service as datasets
from vur.forge import instruction, review
from vur.forge.schemas import (
    ApproveRequest,
    EditRequest,
    GenerateAccepted,
    GenerateRequest,
    InstructionDatasetCreate,
    InstructionDatasetRead,
    InstructionDatasetUpdate,
    ItemRead,
    PendingItemRead,
    Provider,
    ProviderKeyCreate,
    ProviderKeyRead,
    RejectRequest,
    ReviewRead,
    ReviewStatus,
)
from vur.identity.auth import Principal, WorkspaceAdmin, WorkspaceReader, WorkspaceWriter

router = APIRouter(prefix="/api/v1", tags=["forge"])


# --- instruction datasets -----------------------------------------------------------------


@router.post("/datasets", response_model=InstructionDatasetRead, status_code=201, summary="Create an instruction dataset (kind 'instruction', status draft)")
def create_dataset(body: InstructionDatasetCreate, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> InstructionDatasetRead:
    return instruction.read(*instruction.create_dataset(session, settings, principal.workspace_id, principal.user_id, body))


@router.patch("/datasets/{dataset_id}", response_model=InstructionDatasetRead, summary="Change an instruction dataset (only the fields given); archive it or bring it back (409 while it generates)")
def update_dataset(dataset_id: uuid.UUID, body: InstructionDatasetUpdate, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> InstructionDatasetRead:
    return instruction.read(*instruction.update_dataset(session, settings, principal.workspace_id, dataset_id, body))


@router.get("/datasets/{dataset_id}/items", response_model=list[ItemRead], summary="A dataset's items of every status, oldest first (none for a tabular dataset)")
def list_items(
    dataset_id: uuid.UUID,
    principal: WorkspaceReader,
    session: DbSession,
    response: Response,
    page: PageParams,
    review_status: ReviewStatus | None = None,
    min_quality_score: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> list[ItemRead]:
    dataset = datasets.get_dataset(session, dataset_id, principal.workspace_id)
    rows, total = instruction.list_items(session, dataset, review_status=review_status, min_quality_score=min_quality_score, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [ItemRead.model_validate(row) for row in rows]


@router.post(
    "/datasets/generate",
    response_model=GenerateAccepted,
    status_code=202,
    summary="Generate items for an instruction dataset from its segments, in the background (409 while it is generating)",
)
def generate(body: GenerateRequest, principal: WorkspaceWriter, session: DbSession, settings: AppSettings) -> GenerateAccepted:
    extra, job = instruction.start_generation(session, settings, principal.workspace_id, principal.user_id, body)
    return GenerateAccepted(status=extra.status, items_created=0, job_id=job.id)


# --- review -------------------------------------------------------------------------------

ItemId = Annotated[uuid.UUID, Path(description="The item's id")]


def _reviewer(principal: Principal, reviewer_id: str | None) -> str:
    return reviewer_id or principal.email[:100]


@router.get("/dataset/review/pending", response_model=list[PendingItemRead], summary="Items waiting for review, oldest first")
def list_pending(principal: WorkspaceReader, session: DbSession, response: Response, page: PageParams, dataset_id: uuid.UUID | None = None) -> list[PendingItemRead]:
    rows, total = review.list_pending(session, principal.workspace_id, dataset_id=dataset_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return [PendingItemRead.model_validate({**{name: getattr(item, name) for name in PendingItemRead.model_fields if name != "dataset_name"}, "dataset_name": name}) for item, name in rows]


@router.post("/dataset/review/{item_id}/approve", response_model=ReviewRead, summary="Approve an item")
def approve(item_id: ItemId, principal: WorkspaceWriter, session: DbSession, body: ApproveRequest | None = None) -> ReviewRead:
    request = body or ApproveRequest()
    item = review.get_item(session, item_id, principal.workspace_id)
    return ReviewRead.model_validate(review.decide(session, item, "approve", principal.user_id, _reviewer(principal, request.reviewer_id), request.justification))


@router.post("/dataset/review/{item_id}/reject", response_model=ReviewRead, summary="Reject an item (a justification is required)")
def reject(item_id: ItemId, body: RejectRequest, principal: WorkspaceWriter, session: DbSession) -> ReviewRead:
    item = review.get_item(session, item_id, principal.workspace_id)
    return ReviewRead.model_validate(review.decide(session, item, "reject", principal.user_id, _reviewer(principal, body.reviewer_id), body.justification))


@router.post("/dataset/review/{item_id}/edit", response_model=ReviewRead, summary="Edit an item's fields (at least one); its quality is scored again")
def edit(item_id: ItemId, body: EditRequest, principal: WorkspaceWriter, session: DbSession) -> ReviewRead:
    item = review.get_item(session, item_id, principal.workspace_id)
    return ReviewRead.model_validate(review.edit(session, item, body.changes(), principal.user_id, _reviewer(principal, body.reviewer_id), body.justification))


@router.get("/dataset/review/{item_id}/history", response_model=list[ReviewRead], summary="An item's reviews, oldest first")
def history(item_id: ItemId, principal: WorkspaceReader, session: DbSession) -> list[ReviewRead]:
    item = review.get_item(session, item_id, principal.workspace_id)
    return [ReviewRead.model_validate(action) for action in review.history(session, item)]


# --- provider keys ------------------------------------------------------------------------


@router.get("/provider-keys", response_model=list[ProviderKeyRead], summary="The workspace's stored provider API keys (last four characters only)")
def list_keys(principal: WorkspaceReader, session: DbSession) -> list[ProviderKeyRead]:
    return [ProviderKeyRead.model_validate(row) for row in instruction.list_keys(session, principal.workspace_id)]


@router.post("/provider-keys", response_model=ProviderKeyRead, status_code=201, summary="Store (or replace) the workspace's API key for a provider, encrypted")
def put_key(body: ProviderKeyCreate, principal: WorkspaceAdmin, session: DbSession, settings: AppSettings) -> ProviderKeyRead:
    return ProviderKeyRead.model_validate(instruction.put_key(session, settings, principal.workspace_id, body.provider, body.api_key))


@router.delete("/provider-keys/{provider}", status_code=204, summary="Forget the workspace's key for a provider (the server's, if any, applies again)")
def delete_key(provider: Provider, principal: WorkspaceAdmin, session: DbSession) -> None:
    instruction.delete_key(session, principal.workspace_id, provider)
