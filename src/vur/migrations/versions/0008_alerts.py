"""Alerts and alert rules.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import vur.core.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("alert_rules",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("kind", sa.String(length=30), nullable=False),
    sa.Column("model_id", sa.Uuid(), nullable=True),
    sa.Column("metric", sa.String(length=10), nullable=False),
    sa.Column("threshold", sa.Float(), nullable=False),
    sa.Column("window_hours", sa.Integer(), nullable=False),
    sa.Column("severity", sa.String(length=10), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_alert_rules_model_id_models"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_alert_rules_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules"))
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_rules_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_rules_workspace_id"), ["workspace_id"], unique=False)

    op.create_table("alerts",
    sa.Column("workspace_id", sa.Uuid(), nullable=False),
    sa.Column("rule_id", sa.Uuid(), nullable=True),
    sa.Column("kind", sa.String(length=30), nullable=False),
    sa.Column("key", sa.String(length=200), nullable=False),
    sa.Column("severity", sa.String(length=10), nullable=False),
    sa.Column("status", sa.String(length=15), nullable=False),
    sa.Column("title", sa.String(length=300), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("subject_type", sa.String(length=30), nullable=False),
    sa.Column("subject_id", sa.Uuid(), nullable=True),
    sa.Column("details", sa.JSON(), nullable=False),
    sa.Column("acknowledged_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
    sa.Column("resolved_at", vur.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("created_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_at", vur.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["acknowledged_by"], ["users.id"], name=op.f("fk_alerts_acknowledged_by_users"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.id"], name=op.f("fk_alerts_rule_id_alert_rules"), ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_alerts_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts"))
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_key"), ["key"], unique=False)
        batch_op.create_index("ix_alerts_workspace_status", ["workspace_id", "status"], unique=False)
        batch_op.create_index("uq_alerts_active_key", ["key"], unique=True, sqlite_where=sa.text("status != 'resolved'"), postgresql_where=sa.text("status != 'resolved'"))



def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("uq_alerts_active_key")
        batch_op.drop_index("ix_alerts_workspace_status")
        batch_op.drop_index(batch_op.f("ix_alerts_key"))

    op.drop_table("alerts")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_rules_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_alert_rules_model_id"))

    op.drop_table("alert_rules")
