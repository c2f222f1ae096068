"""Pipelines: the seven steps of the forecasting studio, their configurations and state.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("pipelines",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("created_by", sa.Uuid(), nullable=True),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("status", sa.Enum("draft", "ready", "running", "completed", "failed", name="pipelinestatus", native_enum=False, length=16), nullable=False),
    sa.Column("steps", sa.JSON(), nullable=False),
    sa.Column("current_step", sa.String(length=20), nullable=False),
    sa.Column("completed_steps", sa.JSON(), nullable=False),
    sa.Column("dataset_id", sa.Uuid(), nullable=True),
    sa.Column("model_id", sa.Uuid(), nullable=True),
    sa.Column("last_job_id", sa.Uuid(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_pipelines_created_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_pipelines_dataset_id_datasets"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["last_job_id"], ["jobs.id"], name=op.f("fk_pipelines_last_job_id_jobs"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_pipelines_model_id_models"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_pipelines_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines"))
    )
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipelines_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pipelines_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pipelines_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_pipelines_workspace_id"), ["workspace_id"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipelines_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_pipelines_status"))
        batch_op.drop_index(batch_op.f("ix_pipelines_model_id"))
        batch_op.drop_index(batch_op.f("ix_pipelines_dataset_id"))

    op.drop_table("pipelines")
