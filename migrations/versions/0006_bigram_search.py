"""bigram search: two-character Chinese words from an index, on both databases

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-20

Revision 0003's trigram index cannot answer one or two characters, and most
Chinese words are two (储能, 光伏): those searches scanned every current
version with LIKE. This revision replaces it with a bigram index, which answers
two characters as one token and longer words as a phrase of bigrams (what a
query means is defined once, in pipeline/reading/bigrams.py; how the index is
kept and asked, in pipeline/archive/search.py):

- SQLite: `article_bigrams`, a contentless FTS5 table (title, lede, body;
  rowid = the version's id) of pre-split token text;
- PostgreSQL: `article_bigrams` (version_id, part, terms tsvector) with a GIN
  index on terms.

The PostgreSQL table is created as today's write path fills it, with the
`trigrams` column revision 0011 added (its GIN index is 0011's); an archive
that ran this revision before 0011 existed has no such column, and 0011
renders its terms again.

The index needs Python (the split), so no trigger can keep it: the archive's
write path does (pipeline/archive/versions.py), and this revision fills it
for the open versions written before, in batches of
PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE (default MIGRATION_BATCH_SIZE) versions,
each batch its own transaction, in version id order. Killed at any point,
the same `portal-archive db upgrade` continues after the highest version id
already indexed. Nothing else writes meanwhile: the code refuses an archive
that is not at head. Only then are 0003's triggers, FTS5 table and trigram
indexes dropped.

Note for later revisions: the old note on batch-mode rebuilds of
article_versions no longer applies (no triggers live on it now).
"""
import importlib
import sys

from alembic import op
from sqlalchemy import text

from pipeline.archive.defaults import migration_batch_size
from pipeline.archive.search import INDEX, index_versions


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TRIGRAM_TRIGGERS = ("article_search_version_insert", "article_search_version_update",
                    "article_search_version_delete")
TRIGRAM_PG_INDEXES = [f"ix_article_versions_search_{c}" for c in ("title", "lede", "body_text")]


def _create_index(dialect: str) -> None:
    if dialect == "sqlite":
        # unicode61 only splits at the spaces of the pre-split text; no diacritics are removed, so
        # a word matches exactly what the pure split says (lowercase is already done there).
        op.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {INDEX} USING fts5(title, lede, body, "
                   "content='', tokenize='unicode61 remove_diacritics 0')")
    else:
        op.execute(f"""CREATE TABLE IF NOT EXISTS {INDEX} (
            version_id INTEGER NOT NULL CONSTRAINT fk_{INDEX}_version_id_article_versions
                REFERENCES article_versions (id),
            part SMALLINT NOT NULL,
            terms TSVECTOR NOT NULL,
            trigrams TSVECTOR NOT NULL,
            published_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            article_id INTEGER NOT NULL,
            CONSTRAINT pk_{INDEX} PRIMARY KEY (version_id, part))""")
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_{INDEX}_terms ON {INDEX} USING gin (terms)")


def _fill(conn, dialect: str, into: str = INDEX, progress: str = "search index") -> None:
    """Index the open versions above the highest one indexed, a batch per transaction, into the
    index or a table like it (revision 0011 rebuilds the PostgreSQL one), each batch's line on
    stderr starting with `progress`."""
    size = migration_batch_size()
    done_up_to = conn.execute(text(f"SELECT max(rowid) FROM {into}" if dialect == "sqlite"
                                   else f"SELECT max(version_id) FROM {into}")).scalar() or 0
    total = conn.execute(text("SELECT count(*) FROM article_versions WHERE valid_to IS NULL AND id > :w"),
                         {"w": done_up_to}).scalar()
    done = 0
    while True:
        conn.exec_driver_sql("BEGIN")
        rows = conn.execute(text("SELECT id, title, lede, body_text, published_at, article_id FROM article_versions "
                                 "WHERE valid_to IS NULL AND id > :w ORDER BY id LIMIT :n"),
                            {"w": done_up_to, "n": size}).all()
        if not rows:
            conn.exec_driver_sql("COMMIT")
            break
        index_versions(conn, rows, into=into)
        conn.exec_driver_sql("COMMIT")
        done += len(rows)
        done_up_to = rows[-1].id
        # One line per batch: long work shows progress, and a test can stop it mid-way.
        print(f"{progress}: {done}/{total} versions, up to id {done_up_to}", file=sys.stderr, flush=True)


def upgrade() -> None:
    context = op.get_context()
    dialect = context.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return
    _create_index(dialect)
    with context.autocommit_block():
        _fill(op.get_bind(), dialect)
    if dialect == "sqlite":
        for trigger in TRIGRAM_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS article_search")
    else:
        for name in TRIGRAM_PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return
    op.execute(f"DROP TABLE IF EXISTS {INDEX}")
    # Back to 0003's trigram index, built as 0003 builds it.
    importlib.import_module("migrations.versions.0003_search_index").upgrade()
