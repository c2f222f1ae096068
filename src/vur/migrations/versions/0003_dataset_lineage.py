"""dataset lineage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 21:55:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Uuid(), nullable=True))
        # The server default fills the rows that exist already; new rows get theirs from the model.
        batch_op.add_column(sa.Column('steps', sa.JSON(), server_default='[]', nullable=False))
        batch_op.create_index(batch_op.f('ix_datasets_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_datasets_parent_id_datasets'), 'datasets', ['parent_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.alter_column('steps', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_datasets_parent_id_datasets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_datasets_parent_id'))
        batch_op.drop_column('steps')
        batch_op.drop_column('parent_id')
