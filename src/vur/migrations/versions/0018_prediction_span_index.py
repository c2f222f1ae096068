"""Earlier predictions are found for scoring by their forecast span: every prediction
whose span the observations reach is now scored (a page at a time), not only the newest
50, so an index led by the creation time no longer stops early. It walked all of a
model's predictions on every request with observations, however few of them the
observations reach; one led by the span's end seeks to those that can. `id` follows it
for the pages' order, and the other filter columns make the search index-only.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SPAN_COLUMNS = ["model_id", "last_ts", "id", "first_ts", "scored_points", "horizon", "series_count"]
SCORING_COLUMNS = ["model_id", "created_at", "last_ts", "first_ts", "scored_points", "horizon", "series_count"]


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_scoring")
        batch_op.create_index("ix_predictions_model_span", SPAN_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_model_span")
        batch_op.create_index("ix_predictions_model_scoring", SCORING_COLUMNS, unique=False)
