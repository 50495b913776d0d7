"""mail.held_by, mail.held_until: which worker is finishing a pending mail

Revision ID: 0005_mail_holder
Revises: 0004_picture_jobs
"""
from alembic import op
import sqlalchemy as sa
import intake.models


revision = '0005_mail_holder'
down_revision = '0004_picture_jobs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('held_until', intake.models.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mail', schema=None) as batch_op:
        batch_op.drop_column('held_until')
        batch_op.drop_column('held_by')
