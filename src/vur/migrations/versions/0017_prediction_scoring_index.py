"""Earlier predictions are found for scoring newest first from one index that holds every
column the search filters on: the (model_id, last_ts) index left the database reading,
then sorting, every prediction of the model over the same span (all the rows of a model
that serves the same forecast again and again). Its leading column serves the lookups by
model alone, so the single-column model_id index goes: one index less to write per
prediction.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SCORING_COLUMNS = ["model_id", "created_at", "last_ts", "first_ts", "scored_points", "horizon", "series_count"]


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_last_ts")
        batch_op.drop_index("ix_predictions_model_id")
        batch_op.create_index("ix_predictions_model_scoring", SCORING_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_scoring")
        batch_op.create_index("ix_predictions_model_id", ["model_id"], unique=False)
        batch_op.create_index("ix_predictions_model_last_ts", ["model_id", "last_ts"], unique=False)
