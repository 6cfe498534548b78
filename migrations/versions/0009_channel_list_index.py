"""an index on articles (channel, published_at): a channel's list is read in order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The article list filtered by channel (the list page, /api/articles) is
ordered newest first by publication. With only the channel index SQLite
reads every article of the channel and its open version, then sorts them to
keep 50: 66 ms at 50,000 articles (bench/scale), a tenth of that again for
each 50,000 more. With (channel, published_at) it walks the channel's
articles newest first and stops at the page.
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_articles_channel_published_at', 'articles', ['channel', 'published_at'])


def downgrade() -> None:
    op.drop_index('ix_articles_channel_published_at', table_name='articles')
