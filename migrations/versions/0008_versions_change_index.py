"""an index on article_versions (change, article_id): the change feed counts its rows from it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The change page, its API and the Atom feed count the edits, takedowns and
restorations (`pipeline.archive.queries.changes`). Without an index on
`change` that count reads the whole article_versions table, every version's
text included: 250 ms at 80,000 versions on SQLite (bench/scale), growing
with the archive. With it the count reads only the index.

The article_id after the change is not decoration: with `change` alone, SQLite
(no ANALYZE statistics) chose that index for the "edited at least once" list's
EXISTS (an edit of this article) and read every edit of the archive for each
article, minutes at 50,000 articles. With (change, article_id) that lookup is
one seek into this index.
"""
import importlib

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An archive whose downgrade of 0007 was killed midway still says 0007: finished back first.
    importlib.import_module("migrations.versions.0007_compact_raw_pages").undo_interrupted_downgrade()
    op.create_index('ix_article_versions_change', 'article_versions', ['change', 'article_id'])


def downgrade() -> None:
    op.drop_index('ix_article_versions_change', table_name='article_versions')
