"""trigram phrases: PostgreSQL's search terms hold each CJK run's trigrams too

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

A rare phrase of common bigrams (宁累计建成车: 1,582 of 500,000 articles, each
of its bigrams in more than 30% of them) was slow on PostgreSQL: the GIN
index named every version holding all five bigrams, and each had its
tsvector read to compare positions (5,400 before 1,001 hits, 66 ms;
bench/scale). The terms now hold every run's trigrams as well, each at its
first bigram's position, and a piece of three or more characters is asked as
the phrase of its trigrams (pipeline/reading/bigrams.py): the same meaning,
far fewer candidates, and a three-character piece is one lexeme.

This revision renders the open versions' terms again into a table of the
same shape, `article_bigrams_rebuilt`, in batches of
PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE (default MIGRATION_BATCH_SIZE) versions,
each its own transaction, in version id order, without an index to keep
(one GIN index built at the end costs less than 500,000 insertions into
it). Killed at any point, the same `portal-archive db upgrade` continues
after the highest version id rebuilt. Then, in one transaction, the GIN
index is built, the old table dropped and the new one takes its name.
Nothing else writes meanwhile: the code refuses an archive that is not at
head.

SQLite is unchanged: FTS5 compares positions in its doclists, not in the
documents. The downgrade keeps the terms as they are: a phrase of bigrams
(what 0010's code asks) means the same with trigrams beside them.
"""
import sys

from alembic import op
from sqlalchemy import text

from pipeline.archive.defaults import migration_batch_size
from pipeline.archive.search import INDEX, index_versions

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

REBUILT = f"{INDEX}_rebuilt"
# What PostgreSQL may use to build the GIN index at the end: its default of 64 MB took it in
# many passes over the 500,000 versions' terms.
INDEX_BUILD_MEMORY = "512MB"


def _fill(conn) -> None:
    """Render the open versions above the highest one rebuilt, a batch per transaction."""
    size = migration_batch_size()
    done_up_to = conn.execute(text(f"SELECT max(version_id) FROM {REBUILT}")).scalar() or 0
    total = conn.execute(text("SELECT count(*) FROM article_versions WHERE valid_to IS NULL AND id > :w"),
                         {"w": done_up_to}).scalar()
    done = 0
    while True:
        conn.exec_driver_sql("BEGIN")
        rows = conn.execute(text("SELECT id, title, lede, body_text FROM article_versions "
                                 "WHERE valid_to IS NULL AND id > :w ORDER BY id LIMIT :n"),
                            {"w": done_up_to, "n": size}).all()
        if not rows:
            conn.exec_driver_sql("COMMIT")
            break
        index_versions(conn, rows, into=REBUILT)
        conn.exec_driver_sql("COMMIT")
        done += len(rows)
        done_up_to = rows[-1].id
        # One line per batch: long work shows progress, and a test can stop it mid-way.
        print(f"trigram terms: {done}/{total} versions, up to id {done_up_to}", file=sys.stderr, flush=True)


def upgrade() -> None:
    context = op.get_context()
    if context.dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE IF NOT EXISTS {REBUILT} (LIKE {INDEX})")
    with context.autocommit_block():
        _fill(op.get_bind())
    op.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    op.execute(f"DROP TABLE {INDEX}")
    op.execute(f"ALTER TABLE {REBUILT} RENAME TO {INDEX}")
    op.execute(f"""ALTER TABLE {INDEX}
        ADD CONSTRAINT pk_{INDEX} PRIMARY KEY (version_id, part),
        ADD CONSTRAINT fk_{INDEX}_version_id_article_versions FOREIGN KEY (version_id)
            REFERENCES article_versions (id)""")
    op.execute(f"CREATE INDEX ix_{INDEX}_terms ON {INDEX} USING gin (terms)")
    op.execute(f"ANALYZE {INDEX}")


def downgrade() -> None:
    pass
