"""The forge's tables: business domains, uploaded documents, their processed versions
and segments, and generation templates. Every row belongs to a workspace."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vur.core.db import Base, RecordMixin


class Domain(RecordMixin, Base):
    """A business domain (VR Chat, VR Lex...) that documents and templates belong to."""

    __tablename__ = "forge_domains"
    __resource__ = "Domain"
    __table_args__ = (UniqueConstraint("workspace_id", "slug"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Document(RecordMixin, Base):
    """An uploaded PDF, DOCX, TXT or Markdown file. Its format was recognised from the
    bytes; `s3_key` is where the artifact store keeps it. Each processing makes a new
    version; `current_version_id` is the latest that succeeded, whose segments are the
    document's segments. `error` says why the last processing failed."""

    __tablename__ = "forge_documents"
    __resource__ = "Document"
    __table_args__ = (Index("ix_forge_documents_workspace_created", "workspace_id", "created_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    domain_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_domains.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    use_case: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    filename: Mapped[str] = mapped_column(String(255))
    original_filename: Mapped[str] = mapped_column(String(255))
    s3_key: Mapped[str] = mapped_column(String(300))
    file_format: Mapped[str] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(100))
    file_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # uploaded -> processing -> processed | failed; either of the last two may be processed again.
    status: Mapped[str] = mapped_column(String(16), default="uploaded", index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # No foreign key: versions and documents reference each other, and a version only
    # goes away with its document (CASCADE), so this never dangles.
    current_version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    current_version: Mapped[int | None] = mapped_column(Integer, default=None)
    # `metadata` is taken on declarative classes; the column keeps the seed's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class DocumentVersion(RecordMixin, Base):
    """One processing of a document: how it was segmented, by which job, and how it went."""

    __tablename__ = "forge_document_versions"
    __resource__ = "Document version"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_documents.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    segment_type: Mapped[str] = mapped_column(String(20))
    segment_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # processing -> processed | failed
    status: Mapped[str] = mapped_column(String(16), default="processing")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    segment_count: Mapped[int] = mapped_column(Integer, default=0)
    # What extraction found: pages, characters.
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Segment(RecordMixin, Base):
    """A piece of a document version's text: a paragraph, clause, chat turn, FAQ pair or
    CRM record (or a part of one, if it was longer than the version's max_length)."""

    __tablename__ = "forge_segments"
    __resource__ = "Segment"
    __table_args__ = (Index("ix_forge_segments_version_position", "document_version_id", "position"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_domains.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_documents.id", ondelete="CASCADE"), index=True)
    document_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_document_versions.id", ondelete="CASCADE"))
    use_case: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    segment_type: Mapped[str] = mapped_column(String(20), index=True)
    content: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Template(RecordMixin, Base):
    """A prompt template for generating instruction data from segments.
    `user_prompt_template` holds `{content}` (the segment) and the `variables` declared."""

    __tablename__ = "forge_templates"
    __resource__ = "Template"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_domains.id", ondelete="CASCADE"), index=True)
    use_case: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    name: Mapped[str] = mapped_column(String(100))
    system_prompt: Mapped[str] = mapped_column(Text)
    user_prompt_template: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_model_family: Mapped[str | None] = mapped_column(String(50), default=None)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


# --- instruction data (the forge's second half) -----------------------------------------
# An instruction dataset is a row of the shared `datasets` table (kind "instruction", so
# /api/v1/datasets lists it beside tabular ones) plus this row with what only it has.


class InstructionDataset(Base):
    """What a `datasets` row of kind "instruction" adds: where its items come from (domain,
    template, segment filter), who generates them (provider, generation_config), its
    status (draft → generating → ready; archived) and its item counters, which are kept
    exact by updating them in the same transaction as the items they count."""

    __tablename__ = "forge_instruction_datasets"
    __resource__ = "Dataset"

    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_domains.id", ondelete="CASCADE"), index=True)
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("forge_templates.id", ondelete="SET NULL"), default=None)
    use_case: Mapped[str | None] = mapped_column(String(100), default=None)
    provider: Mapped[str] = mapped_column(String(50))
    target_model_family: Mapped[str | None] = mapped_column(String(50), default=None)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    generation_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    segment_filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    approved_items: Mapped[int] = mapped_column(Integer, default=0)
    rejected_items: Mapped[int] = mapped_column(Integer, default=0)
    pending_items: Mapped[int] = mapped_column(Integer, default=0)
    # The latest generation job, and what went wrong in it (failures per segment).
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    generation_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InstructionItem(RecordMixin, Base):
    """One generated example: an instruction with its input, an ideal and a bad response
    and why. One per (dataset, segment, template): re-running generation does not make
    another. `review_status`: pending, approved or rejected."""

    __tablename__ = "forge_items"
    __resource__ = "Item"
    __table_args__ = (UniqueConstraint("dataset_id", "segment_id", "template_id"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    segment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("forge_segments.id", ondelete="SET NULL"), default=None)
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("forge_templates.id", ondelete="SET NULL"), default=None)
    instruction: Mapped[str] = mapped_column(Text)
    input_text: Mapped[str] = mapped_column(Text, default="")
    ideal_response: Mapped[str] = mapped_column(Text)
    bad_response: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[str] = mapped_column(Text, default="")
    quality_score: Mapped[float] = mapped_column(default=0.0)
    quality_flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    review_status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    # Provider, model, tokens and latency of the call that produced it.
    generation_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReviewAction(RecordMixin, Base):
    """One human decision on an item: approve, reject (with a justification) or edit
    (the fields before and after)."""

    __tablename__ = "forge_reviews"
    __resource__ = "Review"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forge_items.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    # The seed's free-form reviewer label (the user's email unless the client names one),
    # and the authenticated user who made the request, which a client cannot choose.
    reviewer_id: Mapped[str | None] = mapped_column(String(100), default=None)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    justification: Mapped[str | None] = mapped_column(Text, default=None)
    previous_values: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class ProviderKey(RecordMixin, Base):
    """A workspace's API key for one LLM provider, encrypted at rest (Fernet, derived from
    the instance secret). Only its last four characters are ever shown."""

    __tablename__ = "forge_provider_keys"
    __resource__ = "Provider key"
    __table_args__ = (UniqueConstraint("workspace_id", "provider"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(50))
    ciphertext: Mapped[str] = mapped_column(Text)
    last4: Mapped[str] = mapped_column(String(4))


# --- exports and fine-tuning --------------------------------------------------------------


class DatasetExport(RecordMixin, Base):
    """One export of an instruction dataset: a file in the artifact store (`s3_key`) in a
    layout that fine-tuning services take (chat messages, or preference pairs), made from
    the items that `filters_applied` selected. Numbered from 1 per dataset."""

    __tablename__ = "forge_exports"
    __resource__ = "Export"
    __table_args__ = (UniqueConstraint("dataset_id", "export_version"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    export_version: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(8))
    layout: Mapped[str] = mapped_column(String(16))
    s3_key: Mapped[str] = mapped_column(String(300))
    # Written within the request that asks for it: completed, or nothing at all.
    status: Mapped[str] = mapped_column(String(16), default="completed")
    item_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    filters_applied: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FineTuningJob(RecordMixin, Base):
    """A fine-tuning run of a registered LLM at a provider (OpenAI, Together) on an export.
    pending (not submitted, or queued at the provider) → running → completed | failed |
    cancelled. The poller owns a job while `next_poll_at` lies in the future after its
    claim; `cancel_requested` asks it to cancel the job at the provider."""

    __tablename__ = "forge_finetuning_jobs"
    __resource__ = "Training job"
    __table_args__ = (Index("ix_forge_finetuning_jobs_status_next_poll", "status", "next_poll_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    dataset_export_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("forge_exports.id", ondelete="SET NULL"), default=None)
    provider: Mapped[str] = mapped_column(String(20))
    base_model: Mapped[str] = mapped_column(String(200))
    # sft (chat export) or dpo (preference export).
    method: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    external_file_id: Mapped[str | None] = mapped_column(String(200), default=None)
    external_job_id: Mapped[str | None] = mapped_column(String(200), default=None)
    external_status: Mapped[str | None] = mapped_column(String(32), default=None)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Provider calls that failed in a row (429, 5xx, timeouts); too many fail the job.
    failed_polls: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
