"""The forge's tables: business domains, uploaded documents, their processed versions
and segments, and generation templates. Every row belongs to a workspace."""

from __future__ import annotations

import uuid
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
