"""Database connections and prediction streams: external SQL sources, and models that
predict from their new rows on an interval.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("database_connections",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("dialect", sa.String(length=20), nullable=False),
    sa.Column("host", sa.String(length=255), nullable=True),
    sa.Column("database", sa.String(length=255), nullable=True),
    sa.Column("url_encrypted", sa.Text(), nullable=False),
    sa.Column("table_name", sa.String(length=255), nullable=True),
    sa.Column("query", sa.Text(), nullable=True),
    sa.Column("timestamp_column", sa.String(length=255), nullable=False),
    sa.Column("value_column", sa.String(length=255), nullable=False),
    sa.Column("series_column", sa.String(length=255), nullable=True),
    sa.Column("status", sa.String(length=20), nullable=False),
    sa.Column("last_checked_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_database_connections_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_database_connections"))
    )
    with op.batch_alter_table("database_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_database_connections_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("prediction_streams",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("model_id", sa.Uuid(), nullable=False),
    sa.Column("database_id", sa.Uuid(), nullable=False),
    sa.Column("pipeline_id", sa.Uuid(), nullable=True),
    sa.Column("created_by", sa.Uuid(), nullable=True),
    sa.Column("interval_seconds", sa.Float(), nullable=False),
    sa.Column("horizon", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=20), nullable=False),
    sa.Column("last_timestamp", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("last_run_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("last_new_rows_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("rows_read", sa.Integer(), nullable=False),
    sa.Column("predictions_made", sa.Integer(), nullable=False),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("stopped_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_prediction_streams_created_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["database_id"], ["database_connections.id"], name=op.f("fk_prediction_streams_database_id_database_connections"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_prediction_streams_model_id_models"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_prediction_streams_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_streams"))
    )
    with op.batch_alter_table("prediction_streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prediction_streams_database_id"), ["database_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_prediction_streams_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_prediction_streams_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_prediction_streams_workspace_id"), ["workspace_id"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("prediction_streams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prediction_streams_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_prediction_streams_status"))
        batch_op.drop_index(batch_op.f("ix_prediction_streams_model_id"))
        batch_op.drop_index(batch_op.f("ix_prediction_streams_database_id"))

    op.drop_table("prediction_streams")
    with op.batch_alter_table("database_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_database_connections_workspace_id"))

    op.drop_table("database_connections")
