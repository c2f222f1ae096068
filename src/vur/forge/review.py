"""Human review of generated items: approve, reject (with a justification), edit, and the
history of those. Each decision is a `ReviewAction`; a change of an item's review status
moves the dataset's counters in the same transaction, so that they always equal a count
of its items by status, however many reviewers work at once."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vur.core.db import utcnow
from vur.core.repository import get_scoped, paginate
from vur.datasets.models import Dataset
from vur.forge import quality
from vur.forge.exceptions import ItemNotFound
from vur.forge.models import InstructionDataset, InstructionItem, ReviewAction, Segment

COUNTERS = {"pending": "pending_items", "approved": "approved_items", "rejected": "rejected_items"}
OUTCOME = {"approve": "approved", "reject": "rejected"}


def get_item(session: Session, item_id: uuid.UUID, workspace_id: uuid.UUID) -> InstructionItem:
    return get_scoped(session, InstructionItem, item_id, workspace_id, ItemNotFound)


def list_pending(session: Session, workspace_id: uuid.UUID, *, dataset_id: uuid.UUID | None, limit: int, offset: int) -> tuple[list[tuple[InstructionItem, str]], int]:
    """Pending items, oldest first (the review queue), each with its dataset's name."""
    stmt = select(InstructionItem).where(InstructionItem.workspace_id == workspace_id, InstructionItem.review_status == "pending")
    if dataset_id is not None:
        stmt = stmt.where(InstructionItem.dataset_id == dataset_id)
    items, total = paginate(session, stmt.order_by(InstructionItem.created_at, InstructionItem.id), limit=limit, offset=offset)
    names = dict(session.execute(select(Dataset.id, Dataset.name).where(Dataset.id.in_({item.dataset_id for item in items}))).all())
    return [(item, names[item.dataset_id]) for item in items], total


def decide(session: Session, item: InstructionItem, action: str, user_id: uuid.UUID, reviewer_id: str, justification: str | None) -> ReviewAction:
    """Approve or reject. Deciding what the item already is records the action but leaves
    the counters as they are."""
    _move(session, item, OUTCOME[action])
    return _record(session, item, action, user_id, reviewer_id, justification)


def edit(session: Session, item: InstructionItem, changes: dict[str, str], user_id: uuid.UUID, reviewer_id: str, justification: str | None) -> ReviewAction:
    """Change the item's fields and score it again (its near-duplicate flag stays: that
    one compares with the whole dataset)."""
    previous = {name: getattr(item, name) for name in changes}
    for name, value in changes.items():
        setattr(item, name, value)
    segment = session.get(Segment, item.segment_id) if item.segment_id is not None else None
    extra = session.get(InstructionDataset, item.dataset_id)
    expected = extra.generation_config.get("language") if extra is not None else None
    fields = {name: getattr(item, name) for name in ("instruction", "input_text", "ideal_response", "bad_response", "explanation")}
    duplicate_of = (item.generation_meta.get("quality") or {}).get("duplicate_of")
    score, flags, measures = quality.assess(fields, segment.content if segment else None, expected, uuid.UUID(duplicate_of) if duplicate_of else None)
    item.quality_score, item.quality_flags = score, flags
    item.generation_meta = {**item.generation_meta, "quality": measures, "edited": True}
    session.flush()
    return _record(session, item, "edit", user_id, reviewer_id, justification, previous, changes)


def history(session: Session, item: InstructionItem) -> list[ReviewAction]:
    stmt = select(ReviewAction).where(ReviewAction.item_id == item.id).order_by(ReviewAction.created_at, ReviewAction.id)
    return list(session.scalars(stmt))


def _move(session: Session, item: InstructionItem, to: str) -> None:
    """Set the item's review status and move the counters, as a compare-and-set: the
    update applies only if the status is still the one read, so that two reviewers
    racing on one item move the counters once each from what really was (on PostgreSQL
    the second waits for the first's row lock, then re-reads; SQLite has one writer)."""
    while True:
        current = session.scalar(select(InstructionItem.review_status).where(InstructionItem.id == item.id))
        if current == to:
            return
        moved = session.execute(
            update(InstructionItem).where(InstructionItem.id == item.id, InstructionItem.review_status == current).values(review_status=to, updated_at=utcnow())
        ).rowcount
        if moved:
            source, target = getattr(InstructionDataset, COUNTERS[current]), getattr(InstructionDataset, COUNTERS[to])
            session.execute(update(InstructionDataset).where(InstructionDataset.dataset_id == item.dataset_id).values({source: source - 1, target: target + 1}))
            return


def _record(
    session: Session,
    item: InstructionItem,
    action: str,
    user_id: uuid.UUID,
    reviewer_id: str,
    justification: str | None,
    previous: dict[str, str] | None = None,
    new: dict[str, str] | None = None,
) -> ReviewAction:
    review = ReviewAction(
        workspace_id=item.workspace_id,
        item_id=item.id,
        action=action,
        reviewer_id=reviewer_id,
        reviewed_by=user_id,
        justification=justification,
        previous_values=previous,
        new_values=new,
    )
    session.add(review)
    session.flush()
    return review
