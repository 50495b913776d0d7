"""question: what students asked, for a person to answer (issue 21)

Revision ID: 0010_i21_questions
Revises: 0005_mail_holder
"""
from alembic import op
import sqlalchemy as sa
import intake.models


revision = '0010_i21_questions'
down_revision = '0005_mail_holder'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'question',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('mail_id', sa.Integer(), nullable=False),
        sa.Column('sender', sa.String(length=320), nullable=False),
        sa.Column('asked_at', intake.models.UtcDateTime(), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('answered_at', intake.models.UtcDateTime(), nullable=True),
        sa.Column('answered_by', sa.String(length=100), nullable=True),
        sa.Column('answer', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['case.id']),
        sa.ForeignKeyConstraint(['mail_id'], ['mail.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('mail_id'),
    )
    op.create_index('ix_question_open', 'question', ['status', 'asked_at'], unique=False)
    op.create_index('ix_question_case_id', 'question', ['case_id'], unique=False)
    op.create_index('ix_question_sender', 'question', ['sender'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_question_sender', table_name='question')
    op.drop_index('ix_question_case_id', table_name='question')
    op.drop_index('ix_question_open', table_name='question')
    op.drop_table('question')
