"""Dataset forge: domains, documents, their versions and segments, templates.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    ]


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{table}_workspace_id_workspaces"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table("forge_domains",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("slug", sa.String(length=100), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("is_active", sa.Boolean(), nullable=False),
    *_record_columns(),
    _workspace_fk("forge_domains"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_domains")),
    sa.UniqueConstraint("workspace_id", "slug", name=op.f("uq_forge_domains_workspace_id"))
    )
    with op.batch_alter_table("forge_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_domains_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_documents",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("domain_id", sa.Uuid(), nullable=False),
    sa.Column("created_by", sa.Uuid(), nullable=True),
    sa.Column("use_case", sa.String(length=100), nullable=True),
    sa.Column("filename", sa.String(length=255), nullable=False),
    sa.Column("original_filename", sa.String(length=255), nullable=False),
    sa.Column("s3_key", sa.String(length=300), nullable=False),
    sa.Column("file_format", sa.String(length=10), nullable=False),
    sa.Column("content_type", sa.String(length=100), nullable=False),
    sa.Column("file_size", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("current_version_id", sa.Uuid(), nullable=True),
    sa.Column("current_version", sa.Integer(), nullable=True),
    sa.Column("metadata", sa.JSON(), nullable=False),
    *_record_columns(),
    sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_forge_documents_created_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["domain_id"], ["forge_domains.id"], name=op.f("fk_forge_documents_domain_id_forge_domains"), ondelete="CASCADE"),
    _workspace_fk("forge_documents"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_documents"))
    )
    with op.batch_alter_table("forge_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_documents_domain_id"), ["domain_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_documents_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_documents_use_case"), ["use_case"], unique=False)
        batch_op.create_index("ix_forge_documents_workspace_created", ["workspace_id", "created_at"], unique=False)

    op.create_table("forge_templates",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("domain_id", sa.Uuid(), nullable=False),
    sa.Column("use_case", sa.String(length=100), nullable=True),
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("system_prompt", sa.Text(), nullable=False),
    sa.Column("user_prompt_template", sa.Text(), nullable=False),
    sa.Column("variables", sa.JSON(), nullable=False),
    sa.Column("target_model_family", sa.String(length=50), nullable=True),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("is_active", sa.Boolean(), nullable=False),
    *_record_columns(),
    sa.ForeignKeyConstraint(["domain_id"], ["forge_domains.id"], name=op.f("fk_forge_templates_domain_id_forge_domains"), ondelete="CASCADE"),
    _workspace_fk("forge_templates"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_templates"))
    )
    with op.batch_alter_table("forge_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_templates_domain_id"), ["domain_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_templates_use_case"), ["use_case"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_templates_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_document_versions",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("document_id", sa.Uuid(), nullable=False),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("segment_type", sa.String(length=20), nullable=False),
    sa.Column("segment_config", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("job_id", sa.Uuid(), nullable=True),
    sa.Column("segment_count", sa.Integer(), nullable=False),
    sa.Column("stats", sa.JSON(), nullable=False),
    *_record_columns(),
    sa.ForeignKeyConstraint(["document_id"], ["forge_documents.id"], name=op.f("fk_forge_document_versions_document_id_forge_documents"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_forge_document_versions_job_id_jobs"), ondelete="SET NULL"),
    _workspace_fk("forge_document_versions"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_document_versions")),
    sa.UniqueConstraint("document_id", "number", name=op.f("uq_forge_document_versions_document_id"))
    )
    with op.batch_alter_table("forge_document_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_document_versions_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_segments",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("domain_id", sa.Uuid(), nullable=False),
    sa.Column("document_id", sa.Uuid(), nullable=False),
    sa.Column("document_version_id", sa.Uuid(), nullable=False),
    sa.Column("use_case", sa.String(length=100), nullable=True),
    sa.Column("segment_type", sa.String(length=20), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("metadata", sa.JSON(), nullable=False),
    *_record_columns(),
    sa.ForeignKeyConstraint(["document_id"], ["forge_documents.id"], name=op.f("fk_forge_segments_document_id_forge_documents"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(
        ["document_version_id"], ["forge_document_versions.id"], name=op.f("fk_forge_segments_document_version_id_forge_document_versions"), ondelete="CASCADE"
    ),
    sa.ForeignKeyConstraint(["domain_id"], ["forge_domains.id"], name=op.f("fk_forge_segments_domain_id_forge_domains"), ondelete="CASCADE"),
    _workspace_fk("forge_segments"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_segments"))
    )
    with op.batch_alter_table("forge_segments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_segments_document_id"), ["document_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_segments_domain_id"), ["domain_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_segments_segment_type"), ["segment_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_segments_use_case"), ["use_case"], unique=False)
        batch_op.create_index("ix_forge_segments_version_position", ["document_version_id", "position"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_segments_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("forge_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_segments_workspace_id"))
        batch_op.drop_index("ix_forge_segments_version_position")
        batch_op.drop_index(batch_op.f("ix_forge_segments_use_case"))
        batch_op.drop_index(batch_op.f("ix_forge_segments_segment_type"))
        batch_op.drop_index(batch_op.f("ix_forge_segments_domain_id"))
        batch_op.drop_index(batch_op.f("ix_forge_segments_document_id"))

    op.drop_table("forge_segments")
    with op.batch_alter_table("forge_document_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_document_versions_workspace_id"))

    op.drop_table("forge_document_versions")
    with op.batch_alter_table("forge_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_templates_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_forge_templates_use_case"))
        batch_op.drop_index(batch_op.f("ix_forge_templates_domain_id"))

    op.drop_table("forge_templates")
    with op.batch_alter_table("forge_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_forge_documents_workspace_created")
        batch_op.drop_index(batch_op.f("ix_forge_documents_use_case"))
        batch_op.drop_index(batch_op.f("ix_forge_documents_status"))
        batch_op.drop_index(batch_op.f("ix_forge_documents_domain_id"))

    op.drop_table("forge_documents")
    with op.batch_alter_table("forge_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_domains_workspace_id"))

    op.drop_table("forge_domains")
