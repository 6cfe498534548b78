"""search in the list's order: PostgreSQL's index rows carry their article's date and id

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08

An unfiltered search of more than COUNT_LIMIT hits found its page by walking
the newest articles, each joined to its open version and its index row and
probed (or by sorting its candidates joined to their articles): at 2,000,000
versions the join alone cost 16-21 ms for the 2,500-4,930 articles a rare
phrase's page walked, and a phrase of 9,345 hits took 37-59 ms for its page
(bench/scale). Each row of `article_bigrams` now holds its version's
`published_at` and `article_id` (a version's date never changes: a date edit
is a new version, indexed anew), with a B-tree on (published_at, article_id),
the list's order, so the page is read from the index table alone
(pipeline.archive.search.newest_hits).

An archive whose table lacks the columns (0006 and 0011 as they were before
this one) gains them empty; the two GIN indexes are dropped (each row is
written again, and 500,000 new entries in each cost more than building them
once: 5.7 minutes against about 4 at 2,000,000 versions), the rows are filled
from their versions in batches of PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE
versions in id order, each its own transaction, and killed at any point the
same `portal-archive db upgrade` goes on from the lowest row still empty.
Then, in the migration's transaction, the columns become NOT NULL and the
indexes are built. An archive whose 0006 or 0011 wrote the columns only
gains the B-tree. Nothing else writes meanwhile: the code refuses an archive
that is not at head.

SQLite is unchanged: FTS5 has no columns to sort by, and its walks of the
newest articles read doclists' tails (pipeline.archive.queries._walk_newest).
"""
import importlib
import sys

import sqlalchemy as sa
from alembic import op

from pipeline.archive.defaults import migration_batch_size
from pipeline.archive.search import INDEX

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

def _fill(conn) -> None:
    """Copy each empty row's version date and article id, a batch of versions per transaction."""
    size = migration_batch_size()
    done_up_to = (conn.execute(sa.text(f"SELECT min(version_id) FROM {INDEX} WHERE published_at IS NULL")).scalar()
                  or 0) - 1
    total = conn.execute(sa.text(f"SELECT count(DISTINCT version_id) FROM {INDEX} WHERE published_at IS NULL")).scalar()
    done = 0
    while True:
        conn.exec_driver_sql("BEGIN")
        last = conn.execute(sa.text(f"SELECT max(version_id) FROM (SELECT DISTINCT version_id FROM {INDEX} "
                                    "WHERE version_id > :w ORDER BY version_id LIMIT :n) AS batch"),
                            {"w": done_up_to, "n": size}).scalar()
        if last is None:
            conn.exec_driver_sql("COMMIT")
            break
        filled = conn.execute(sa.text(
            f"UPDATE {INDEX} AS b SET published_at = v.published_at, article_id = v.article_id "
            "FROM article_versions AS v WHERE v.id = b.version_id AND b.version_id > :w AND b.version_id <= :last "
            "AND b.published_at IS NULL RETURNING b.version_id"), {"w": done_up_to, "last": last}).scalars().all()
        conn.exec_driver_sql("COMMIT")
        done += len(set(filled))
        done_up_to = last
        # One line per batch: long work shows progress, and a test can stop it mid-way.
        print(f"list order: {done}/{total} versions, up to id {done_up_to}", file=sys.stderr, flush=True)


def upgrade() -> None:
    context = op.get_context()
    if context.dialect.name != "postgresql":
        return
    columns = {c["name"]: c for c in sa.inspect(op.get_bind()).get_columns(INDEX)}
    if "article_id" not in columns or columns["article_id"]["nullable"]:
        with context.autocommit_block():
            conn = op.get_bind()
            conn.exec_driver_sql(f"ALTER TABLE {INDEX} ADD COLUMN IF NOT EXISTS published_at "
                                 "TIMESTAMP WITHOUT TIME ZONE, ADD COLUMN IF NOT EXISTS article_id INTEGER")
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{INDEX}_terms")
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{INDEX}_trigrams")
            _fill(conn)
        op.execute(f"ALTER TABLE {INDEX} ALTER COLUMN published_at SET NOT NULL, "
                   "ALTER COLUMN article_id SET NOT NULL")
    importlib.import_module("migrations.versions.0011_trigram_phrases").build_gin_indexes()
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{INDEX}_newest ON {INDEX} (published_at, article_id)")
    op.execute(f"ANALYZE {INDEX}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS ix_{INDEX}_newest")
    op.execute(f"ALTER TABLE {INDEX} DROP COLUMN IF EXISTS published_at, DROP COLUMN IF EXISTS article_id")
