"""Machines and their variable rankings.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("machine_counters",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("last_number", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_machine_counters_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_machine_counters"))
    )
    op.create_table("machines",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("created_by", sa.Uuid(), nullable=True),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("tags", sa.JSON(), nullable=False),
    sa.Column("status", sa.Enum("created", "training", "completed", "failed", name="machinestatus", native_enum=False, length=16), nullable=False),
    sa.Column("model_id", sa.Uuid(), nullable=True),
    sa.Column("training_job_id", sa.Uuid(), nullable=True),
    sa.Column("metrics", sa.JSON(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("trained_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_machines_created_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_machines_model_id_models"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["training_job_id"], ["jobs.id"], name=op.f("fk_machines_training_job_id_jobs"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_machines_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_machines")),
    sa.UniqueConstraint("workspace_id", "number", name=op.f("uq_machines_workspace_id"))
    )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_machines_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_machines_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("machine_rankings",
    sa.Column("machine_id", sa.Uuid(), nullable=False),
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("dataset_id", sa.Uuid(), nullable=True),
    sa.Column("job_id", sa.Uuid(), nullable=True),
    sa.Column("target_column", sa.String(length=300), nullable=False),
    sa.Column("algorithm", sa.String(length=30), nullable=False),
    sa.Column("items", sa.JSON(), nullable=False),
    sa.Column("metrics", sa.JSON(), nullable=False),
    sa.Column("partial_dependence", sa.JSON(), nullable=False),
    sa.Column("dropped", sa.JSON(), nullable=False),
    sa.Column("trained_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_machine_rankings_dataset_id_datasets"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_machine_rankings_job_id_jobs"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["machine_id"], ["machines.id"], name=op.f("fk_machine_rankings_machine_id_machines"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_machine_rankings_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_rankings")),
    sa.UniqueConstraint("machine_id", "version", name=op.f("uq_machine_rankings_machine_id"))
    )
    with op.batch_alter_table("machine_rankings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_machine_rankings_machine_id"), ["machine_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_machine_rankings_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("machine_rankings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machine_rankings_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_machine_rankings_machine_id"))

    op.drop_table("machine_rankings")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machines_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_machines_status"))

    op.drop_table("machines")
    op.drop_table("machine_counters")
