"""picture_job: pictures waiting to be read, claimed per picture by any worker

Revision ID: 0004_picture_jobs
Revises: 0003_desk
"""
from alembic import op
import sqlalchemy as sa
import intake.models


revision = '0004_picture_jobs'
down_revision = '0003_desk'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('picture_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('lease_until', intake.models.UtcDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=True),
    sa.Column('created_at', intake.models.UtcDateTime(), nullable=False),
    sa.Column('read_at', intake.models.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    with op.batch_alter_table('picture_job', schema=None) as batch_op:
        batch_op.create_index('ix_picture_job_claimable', ['status', 'lease_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_picture_job_mail_id'), ['mail_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('picture_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_picture_job_mail_id'))
        batch_op.drop_index('ix_picture_job_claimable')
    op.drop_table('picture_job')
