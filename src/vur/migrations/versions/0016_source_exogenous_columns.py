"""Database sources name the exogenous columns a stream reads future values from.
Existing sources have none.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("database_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exogenous_columns", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("database_connections", schema=None) as batch_op:
        batch_op.drop_column("exogenous_columns")
