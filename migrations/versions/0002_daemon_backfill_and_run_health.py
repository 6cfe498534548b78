"""daemon, backfill and run health

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('aid_probes',
    sa.Column('aid', sa.BigInteger(), nullable=False),
    sa.Column('result', sa.String(length=20), nullable=False),
    sa.Column('probed_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('aid', name=op.f('pk_aid_probes'))
    )
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apscheduler_jobs'))
    )
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apscheduler_jobs_next_run_time'), ['next_run_time'], unique=False)

    op.create_table('backfills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backfills')),
    sa.UniqueConstraint('key', name=op.f('uq_backfills_key'))
    )
    op.create_table('leases',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('holder', sa.Text(), nullable=False),
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('acquired_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('backfill_articles',
    sa.Column('backfill_id', sa.Integer(), nullable=False),
    sa.Column('aid', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['backfill_id'], ['backfills.id'], name=op.f('fk_backfill_articles_backfill_id_backfills')),
    sa.PrimaryKeyConstraint('backfill_id', 'aid', name=op.f('pk_backfill_articles'))
    )
    # Existing articles take their publication time from their open version.
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_at', sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE articles SET published_at = (SELECT v.published_at FROM article_versions v "
        "WHERE v.article_id = articles.id AND v.valid_to IS NULL)"
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.alter_column('published_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index(batch_op.f('ix_articles_published_at'), ['published_at'], unique=False)

    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('health', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('hostname', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('backfill_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_crawl_runs_backfill_id'), ['backfill_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crawl_runs_job'), ['job'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_crawl_runs_backfill_id_backfills'), 'backfills', ['backfill_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_crawl_runs_backfill_id_backfills'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_crawl_runs_job'))
        batch_op.drop_index(batch_op.f('ix_crawl_runs_backfill_id'))
        batch_op.drop_column('backfill_id')
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('pid')
        batch_op.drop_column('hostname')
        batch_op.drop_column('health')
        batch_op.drop_column('job')

    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_articles_published_at'))
        batch_op.drop_column('published_at')

    op.drop_table('backfill_articles')
    op.drop_table('leases')
    op.drop_table('backfills')
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apscheduler_jobs_next_run_time'))

    op.drop_table('apscheduler_jobs')
    op.drop_table('aid_probes')
