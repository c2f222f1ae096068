"""Each model keeps the longest span of the forecasts recorded for it. New observations
can score only a prediction that ends at most that long after the latest of them: the
scoring query bounds its scan of the span index with it. Without the bound, every
request with observations walked past all the unscored predictions that end after the
observations begin, forecasts of a future not yet observed included, so a forecast
asked for again and again from the same observations made each later request slower.

The span is filled in from the predictions that still have points to score (the only
ones scoring reads).

Revision ID: 0020
Revises: 0019
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UNSCORED = "scored_points < horizon * series_count"


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("longest_forecast_seconds", sa.Float(), nullable=True))
    connection = op.get_bind()
    longest: dict[object, float] = {}
    spans = connection.execute(sa.text(f"SELECT model_id, first_ts, last_ts FROM predictions WHERE model_id IS NOT NULL AND first_ts IS NOT NULL AND {UNSCORED}"))
    for model_id, first_ts, last_ts in spans:
        seconds = (_moment(last_ts) - _moment(first_ts)).total_seconds()
        longest[model_id] = max(seconds, longest.get(model_id, seconds))
    models = sa.table("models", sa.column("id"), sa.column("longest_forecast_seconds"))
    for model_id, seconds in longest.items():
        connection.execute(sa.update(models).where(models.c.id == model_id).values(longest_forecast_seconds=seconds))


def _moment(value: object) -> datetime:
    """SQLite answers a raw query's timestamps as text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("longest_forecast_seconds")
