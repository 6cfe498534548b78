"""trigram phrases: PostgreSQL keeps each CJK run's trigrams beside its terms

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

A rare phrase of common bigrams (宁累计建成车: 1,582 of 500,000 articles, each
of its bigrams in more than 30% of them) was slow on PostgreSQL: the GIN
index named every version holding all five bigrams, and each had its
tsvector read to compare positions (5,400 before 1,001 hits, 66 ms;
bench/scale). `article_bigrams` now has a second tsvector, `trigrams`, each
run's trigrams at their first bigram's position, with a GIN index of its
own, and a piece of three or more characters is asked as the phrase of its
trigrams (pipeline/reading/bigrams.py): the same meaning, far fewer
candidates, and a three-character piece is one lexeme. A column of its own,
so that a word's probe still reads only the terms (the trigrams are as long).

An archive whose table has no `trigrams` column (revision 0006 as it was
before this one) has its open versions' terms rendered again into a table of
the new shape, `article_bigrams_rebuilt`, in batches of
PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE (default MIGRATION_BATCH_SIZE) versions,
each its own transaction, in version id order, without an index to keep
(GIN indexes built once at the end cost less than 500,000 insertions into
them). Killed at any point, the same `portal-archive db upgrade` continues
after the highest version id rebuilt. Then, in one transaction, the old table
is dropped, the new one takes its name, its keys and indexes are built.
Nothing else writes meanwhile: the code refuses an archive that is not at
head. An archive whose 0006 already wrote the column only gains the index.

SQLite is unchanged: FTS5 compares positions in its doclists, not in the
documents. The downgrade drops the column and its index (0010's code writes
the terms alone).
"""
import importlib

import sqlalchemy as sa
from alembic import op

from pipeline.archive.search import INDEX

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

REBUILT = f"{INDEX}_rebuilt"
# What PostgreSQL may use to build a GIN index at the end: its default of 64 MB builds one over
# 500,000 versions' terms in many passes.
INDEX_BUILD_MEMORY = "512MB"


def _rebuild(context) -> None:
    """Render the open versions into REBUILT (0006's batches, resumable), then in the migration's
    transaction put it in the old table's place with its keys."""
    op.execute(f"""CREATE TABLE IF NOT EXISTS {REBUILT} (version_id INTEGER NOT NULL, part SMALLINT NOT NULL,
                   terms TSVECTOR NOT NULL, trigrams TSVECTOR NOT NULL,
                   published_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, article_id INTEGER NOT NULL)""")
    fill = importlib.import_module("migrations.versions.0006_bigram_search")._fill
    with context.autocommit_block():
        fill(op.get_bind(), "postgresql", into=REBUILT, progress="trigram terms")
    op.execute(f"DROP TABLE {INDEX}")
    op.execute(f"ALTER TABLE {REBUILT} RENAME TO {INDEX}")
    op.execute(f"""ALTER TABLE {INDEX}
        ADD CONSTRAINT pk_{INDEX} PRIMARY KEY (version_id, part),
        ADD CONSTRAINT fk_{INDEX}_version_id_article_versions FOREIGN KEY (version_id)
            REFERENCES article_versions (id)""")


def upgrade() -> None:
    context = op.get_context()
    if context.dialect.name != "postgresql":
        return
    if "trigrams" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(INDEX)}:
        _rebuild(context)
    build_gin_indexes()
    op.execute(f"ANALYZE {INDEX}")


def build_gin_indexes() -> None:
    """The index table's GIN indexes, each built once over the whole table if missing (revision
    0012 drops and builds them again the same way)."""
    op.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{INDEX}_terms ON {INDEX} USING gin (terms)")
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_{INDEX}_trigrams ON {INDEX} USING gin (trigrams)")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS ix_{INDEX}_trigrams")
    op.execute(f"ALTER TABLE {INDEX} DROP COLUMN IF EXISTS trigrams")
