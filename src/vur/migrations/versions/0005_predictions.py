"""Predictions: every answered forecast request, with its latency and, as actual values
arrive, its error.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("predictions",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("model_id", sa.Uuid(), nullable=True),
    sa.Column("model_version", sa.Integer(), nullable=False),
    sa.Column("source", sa.String(length=20), nullable=False),
    sa.Column("horizon", sa.Integer(), nullable=False),
    sa.Column("series_count", sa.Integer(), nullable=False),
    sa.Column("input_summary", sa.JSON(), nullable=False),
    sa.Column("outputs", sa.JSON(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("scored_points", sa.Integer(), nullable=False),
    sa.Column("absolute_error_sum", sa.Float(), nullable=False),
    sa.Column("squared_error_sum", sa.Float(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_predictions_model_id_models"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_predictions_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions"))
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_predictions_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_predictions_source"), ["source"], unique=False)
        batch_op.create_index("ix_predictions_workspace_created", ["workspace_id", "created_at"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_workspace_created")
        batch_op.drop_index(batch_op.f("ix_predictions_source"))
        batch_op.drop_index(batch_op.f("ix_predictions_model_id"))

    op.drop_table("predictions")
