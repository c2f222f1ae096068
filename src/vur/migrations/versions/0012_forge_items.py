"""Dataset forge: instruction datasets, their generated items, the reviews of those, and
the workspaces' provider API keys.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("forge_instruction_datasets",
    sa.Column("dataset_id", sa.Uuid(), nullable=False),
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("domain_id", sa.Uuid(), nullable=False),
    sa.Column("template_id", sa.Uuid(), nullable=True),
    sa.Column("use_case", sa.String(length=100), nullable=True),
    sa.Column("provider", sa.String(length=50), nullable=False),
    sa.Column("target_model_family", sa.String(length=50), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("generation_config", sa.JSON(), nullable=False),
    sa.Column("segment_filter", sa.JSON(), nullable=False),
    sa.Column("total_items", sa.Integer(), nullable=False),
    sa.Column("approved_items", sa.Integer(), nullable=False),
    sa.Column("rejected_items", sa.Integer(), nullable=False),
    sa.Column("pending_items", sa.Integer(), nullable=False),
    sa.Column("job_id", sa.Uuid(), nullable=True),
    sa.Column("generation_report", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_forge_instruction_datasets_dataset_id_datasets"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["domain_id"], ["forge_domains.id"], name=op.f("fk_forge_instruction_datasets_domain_id_forge_domains"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_forge_instruction_datasets_job_id_jobs"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["template_id"], ["forge_templates.id"], name=op.f("fk_forge_instruction_datasets_template_id_forge_templates"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_forge_instruction_datasets_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("dataset_id", name=op.f("pk_forge_instruction_datasets"))
    )
    with op.batch_alter_table("forge_instruction_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_instruction_datasets_domain_id"), ["domain_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_instruction_datasets_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_instruction_datasets_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_items",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("dataset_id", sa.Uuid(), nullable=False),
    sa.Column("segment_id", sa.Uuid(), nullable=True),
    sa.Column("template_id", sa.Uuid(), nullable=True),
    sa.Column("instruction", sa.Text(), nullable=False),
    sa.Column("input_text", sa.Text(), nullable=False),
    sa.Column("ideal_response", sa.Text(), nullable=False),
    sa.Column("bad_response", sa.Text(), nullable=False),
    sa.Column("explanation", sa.Text(), nullable=False),
    sa.Column("quality_score", sa.Double(), nullable=False),
    sa.Column("quality_flags", sa.JSON(), nullable=False),
    sa.Column("review_status", sa.String(length=16), nullable=False),
    sa.Column("generation_meta", sa.JSON(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_forge_items_dataset_id_datasets"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["segment_id"], ["forge_segments.id"], name=op.f("fk_forge_items_segment_id_forge_segments"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["template_id"], ["forge_templates.id"], name=op.f("fk_forge_items_template_id_forge_templates"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_forge_items_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_items")),
    sa.UniqueConstraint("dataset_id", "segment_id", "template_id", name=op.f("uq_forge_items_dataset_id"))
    )
    with op.batch_alter_table("forge_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_items_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_items_review_status"), ["review_status"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_items_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_reviews",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("item_id", sa.Uuid(), nullable=False),
    sa.Column("action", sa.String(length=16), nullable=False),
    sa.Column("reviewer_id", sa.String(length=100), nullable=True),
    sa.Column("reviewed_by", sa.Uuid(), nullable=True),
    sa.Column("justification", sa.Text(), nullable=True),
    sa.Column("previous_values", sa.JSON(), nullable=True),
    sa.Column("new_values", sa.JSON(), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["item_id"], ["forge_items.id"], name=op.f("fk_forge_reviews_item_id_forge_items"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"], name=op.f("fk_forge_reviews_reviewed_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_forge_reviews_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_reviews"))
    )
    with op.batch_alter_table("forge_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_reviews_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_reviews_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_provider_keys",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("provider", sa.String(length=50), nullable=False),
    sa.Column("ciphertext", sa.Text(), nullable=False),
    sa.Column("last4", sa.String(length=4), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_forge_provider_keys_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_provider_keys")),
    sa.UniqueConstraint("workspace_id", "provider", name=op.f("uq_forge_provider_keys_workspace_id"))
    )
    with op.batch_alter_table("forge_provider_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_provider_keys_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("forge_provider_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_provider_keys_workspace_id"))

    op.drop_table("forge_provider_keys")
    with op.batch_alter_table("forge_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_reviews_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_forge_reviews_item_id"))

    op.drop_table("forge_reviews")
    with op.batch_alter_table("forge_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_items_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_forge_items_review_status"))
        batch_op.drop_index(batch_op.f("ix_forge_items_dataset_id"))

    op.drop_table("forge_items")
    with op.batch_alter_table("forge_instruction_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_instruction_datasets_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_forge_instruction_datasets_status"))
        batch_op.drop_index(batch_op.f("ix_forge_instruction_datasets_domain_id"))

    op.drop_table("forge_instruction_datasets")
