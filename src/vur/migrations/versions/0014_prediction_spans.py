"""Predictions keep the time span they forecast (first_ts, last_ts: naive UTC, as the
forecast timestamps), so newly observed values are scored against the predictions whose
span they fall in, found by index instead of by reading the latest ones.

Revision ID: 0014
Revises: 0013
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_ts", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_ts", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_predictions_model_last_ts", ["model_id", "last_ts"], unique=False)
    _fill_spans()


def _fill_spans() -> None:
    """Existing rows get the span of the timestamps in their outputs."""
    table = sa.table("predictions", sa.column("id", sa.Uuid()), sa.column("outputs", sa.JSON()), sa.column("first_ts", sa.DateTime()), sa.column("last_ts", sa.DateTime()))
    connection = op.get_bind()
    last_id = None
    while True:
        stmt = sa.select(table.c.id, table.c.outputs).order_by(table.c.id).limit(BATCH)
        rows = connection.execute(stmt if last_id is None else stmt.where(table.c.id > last_id)).all()
        for row in rows:
            if stamps := [_naive_utc(datetime.fromisoformat(point["timestamp"])) for point in row.outputs or []]:
                connection.execute(table.update().where(table.c.id == row.id).values(first_ts=min(stamps), last_ts=max(stamps)))
        if len(rows) < BATCH:
            return
        last_id = rows[-1].id


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_last_ts")
        batch_op.drop_column("last_ts")
        batch_op.drop_column("first_ts")
