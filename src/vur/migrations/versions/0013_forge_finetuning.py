"""Dataset forge: exports of instruction datasets, fine-tuning jobs, and the fields of
registered LLMs (kind "llm" rows of the model registry).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("forge_exports",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("dataset_id", sa.Uuid(), nullable=False),
    sa.Column("created_by", sa.Uuid(), nullable=True),
    sa.Column("export_version", sa.Integer(), nullable=False),
    sa.Column("format", sa.String(length=8), nullable=False),
    sa.Column("layout", sa.String(length=16), nullable=False),
    sa.Column("s3_key", sa.String(length=300), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("item_count", sa.Integer(), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(length=64), nullable=False),
    sa.Column("filters_applied", sa.JSON(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_forge_exports_created_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_forge_exports_dataset_id_datasets"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_forge_exports_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_exports")),
    sa.UniqueConstraint("dataset_id", "export_version", name=op.f("uq_forge_exports_dataset_id"))
    )
    with op.batch_alter_table("forge_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_exports_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_exports_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("forge_finetuning_jobs",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("created_by", sa.Uuid(), nullable=True),
    sa.Column("model_id", sa.Uuid(), nullable=False),
    sa.Column("dataset_id", sa.Uuid(), nullable=False),
    sa.Column("dataset_export_id", sa.Uuid(), nullable=True),
    sa.Column("provider", sa.String(length=20), nullable=False),
    sa.Column("base_model", sa.String(length=200), nullable=False),
    sa.Column("method", sa.String(length=8), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("external_file_id", sa.String(length=200), nullable=True),
    sa.Column("external_job_id", sa.String(length=200), nullable=True),
    sa.Column("external_status", sa.String(length=32), nullable=True),
    sa.Column("hyperparameters", sa.JSON(), nullable=False),
    sa.Column("metrics", sa.JSON(), nullable=False),
    sa.Column("error_message", sa.Text(), nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("failed_polls", sa.Integer(), nullable=False),
    sa.Column("next_poll_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("started_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("completed_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_forge_finetuning_jobs_created_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["dataset_export_id"], ["forge_exports.id"], name=op.f("fk_forge_finetuning_jobs_dataset_export_id_forge_exports"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_forge_finetuning_jobs_dataset_id_datasets"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_forge_finetuning_jobs_model_id_models"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_forge_finetuning_jobs_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_forge_finetuning_jobs"))
    )
    with op.batch_alter_table("forge_finetuning_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forge_finetuning_jobs_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_finetuning_jobs_model_id"), ["model_id"], unique=False)
        batch_op.create_index("ix_forge_finetuning_jobs_status_next_poll", ["status", "next_poll_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_forge_finetuning_jobs_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("llm_models",
    sa.Column("model_id", sa.Uuid(), nullable=False),
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("domain_id", sa.Uuid(), nullable=True),
    sa.Column("base_model", sa.String(length=200), nullable=False),
    sa.Column("provider", sa.String(length=50), nullable=False),
    sa.Column("model_family", sa.String(length=50), nullable=True),
    sa.Column("version", sa.String(length=50), nullable=True),
    sa.Column("capabilities", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_llm_models_model_id_models"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_llm_models_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("model_id", name=op.f("pk_llm_models"))
    )
    with op.batch_alter_table("llm_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_llm_models_domain_id"), ["domain_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_llm_models_provider"), ["provider"], unique=False)
        batch_op.create_index(batch_op.f("ix_llm_models_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("llm_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_llm_models_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_llm_models_provider"))
        batch_op.drop_index(batch_op.f("ix_llm_models_domain_id"))

    op.drop_table("llm_models")
    with op.batch_alter_table("forge_finetuning_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_finetuning_jobs_workspace_id"))
        batch_op.drop_index("ix_forge_finetuning_jobs_status_next_poll")
        batch_op.drop_index(batch_op.f("ix_forge_finetuning_jobs_model_id"))
        batch_op.drop_index(batch_op.f("ix_forge_finetuning_jobs_dataset_id"))

    op.drop_table("forge_finetuning_jobs")
    with op.batch_alter_table("forge_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forge_exports_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_forge_exports_dataset_id"))

    op.drop_table("forge_exports")
