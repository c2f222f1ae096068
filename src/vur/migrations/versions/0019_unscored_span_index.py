"""The span index keeps only the predictions that still have points without an actual.
A scored prediction is never read for scoring again, yet the full index made every
request with observations walk past all of them whose span ends after the observations
begin (a served forecast asked for thousands of times is thousands of such rows). The
scoring query names the same condition, so SQLite and PostgreSQL use the partial index.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UNSCORED = "scored_points < horizon * series_count"
SPAN_COLUMNS = ["model_id", "last_ts", "id", "first_ts", "scored_points", "horizon", "series_count"]


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_span")
        batch_op.create_index(
            "ix_predictions_unscored_span", ["model_id", "last_ts", "id", "first_ts"], unique=False, sqlite_where=sa.text(UNSCORED), postgresql_where=sa.text(UNSCORED)
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_unscored_span")
        batch_op.create_index("ix_predictions_model_span", SPAN_COLUMNS, unique=False)
