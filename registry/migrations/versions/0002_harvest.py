"""harvest sources, jobs, items, datasets and records (harvesters/)

Revision ID: 0002_harvest
Revises: 0001
Create Date: 2026-12-01 04:31:25.654254
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")

revision = "0002_harvest"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('harvest_sources',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('organisations', JSON_TYPE, nullable=False),
    sa.Column('query', sa.Text(), nullable=True),
    sa.Column('schedule', sa.String(length=10), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('allow_private_network', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('harvest_datasets',
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('experience_ids', JSON_TYPE, nullable=False),
    sa.Column('last_job_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['harvest_sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('source_id', 'dataset_id')
    )
    op.create_table('harvest_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('source_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('counts', JSON_TYPE, nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['harvest_sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('harvest_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_harvest_jobs_source', ['source_id', 'id'], unique=False)

    op.create_table('harvest_records',
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('experience_id', sa.String(length=40), nullable=False),
    sa.Column('dataset_id', sa.String(length=200), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('withdrawn', sa.Boolean(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_job_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['harvest_sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('source_id', 'experience_id')
    )
    with op.batch_alter_table('harvest_records', schema=None) as batch_op:
        batch_op.create_index('ix_harvest_records_experience', ['experience_id'], unique=False)

    op.create_table('harvest_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.String(length=200), nullable=True),
    sa.Column('dataset_name', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('experience_ids', JSON_TYPE, nullable=False),
    sa.Column('counts', JSON_TYPE, nullable=False),
    sa.Column('messages', JSON_TYPE, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['harvest_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('harvest_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_harvest_items_job_id'), ['job_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('harvest_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_harvest_items_job_id'))

    op.drop_table('harvest_items')
    with op.batch_alter_table('harvest_records', schema=None) as batch_op:
        batch_op.drop_index('ix_harvest_records_experience')

    op.drop_table('harvest_records')
    with op.batch_alter_table('harvest_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_harvest_jobs_source')

    op.drop_table('harvest_jobs')
    op.drop_table('harvest_datasets')
    op.drop_table('harvest_sources')
