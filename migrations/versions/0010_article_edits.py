"""articles.edits: how many of an article's versions are edits, kept by the database

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

The "edited at least once" list (the list page, /api/articles?status=edited)
counted its articles by reading every article row and looking each changed
one up in the change index, or every edit in that index: 71 and 38 ms at
275,000 articles (bench/scale), growing with the archive. `articles.edits`
is the number of the article's versions whose change is `edited`, and a
partial index on (published_at, id) holds the articles with any: the count
reads that index only, and the list walks it newest first.

The count is kept by triggers on article_versions (insert, a change of
`change` or of the article, delete), so every writer keeps it: the crawl's
batch writes, `reparse`, a WARC import that inserts a version into an
article's past and renames the one after it. Existing articles are counted in
batches of PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE (default MIGRATION_BATCH_SIZE)
articles, each its own transaction, after the triggers exist (a count sets
the whole value, so an edit written meanwhile is never counted twice).
Killed at any point, the same `portal-archive db upgrade` does it again: every
step is idempotent.

Note for later revisions: triggers live on article_versions again. A SQLite
batch-mode rebuild of that table (op.batch_alter_table) drops them; create
them again after one (`create_triggers` here).
"""
import sys

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from pipeline.archive.defaults import migration_batch_size

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

INDEX = "ix_articles_edited"
SQLITE_TRIGGERS = {
    "article_versions_edits_insert": """AFTER INSERT ON article_versions WHEN NEW.change = 'edited'
        BEGIN UPDATE articles SET edits = edits + 1 WHERE id = NEW.article_id; END""",
    "article_versions_edits_update": """AFTER UPDATE OF change, article_id ON article_versions
        WHEN OLD.change = 'edited' OR NEW.change = 'edited'
        BEGIN
            UPDATE articles SET edits = edits - 1 WHERE id = OLD.article_id AND OLD.change = 'edited';
            UPDATE articles SET edits = edits + 1 WHERE id = NEW.article_id AND NEW.change = 'edited';
        END""",
    "article_versions_edits_delete": """AFTER DELETE ON article_versions WHEN OLD.change = 'edited'
        BEGIN UPDATE articles SET edits = edits - 1 WHERE id = OLD.article_id; END""",
}
EDITS = "(SELECT count(*) FROM article_versions v WHERE v.change = 'edited' AND v.article_id = articles.id)"
PG_FUNCTION = "article_versions_edits"
PG_TRIGGER = "article_versions_edits"


def create_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
        return
    op.execute(f"""CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.change = 'edited' THEN
                UPDATE articles SET edits = edits - 1 WHERE id = OLD.article_id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.change = 'edited' THEN
                UPDATE articles SET edits = edits + 1 WHERE id = NEW.article_id;
            END IF;
            RETURN NULL;
        END $$""")
    op.execute(f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON article_versions")
    op.execute(f"""CREATE TRIGGER {PG_TRIGGER} AFTER INSERT OR DELETE OR UPDATE OF change, article_id
        ON article_versions FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()""")


def _count(conn) -> None:
    """Every article's edits, a batch of article ids per transaction."""
    size = migration_batch_size()
    top = conn.execute(text("SELECT max(id) FROM articles")).scalar() or 0
    for low in range(1, top + 1, size):
        conn.exec_driver_sql("BEGIN")
        # Only the rows whose count differs are written (on PostgreSQL each written row is a new one).
        conn.execute(text(f"UPDATE articles SET edits = {EDITS} WHERE id >= :low AND id < :high "
                          f"AND edits <> {EDITS}"), {"low": low, "high": low + size})
        conn.exec_driver_sql("COMMIT")
        # One line per batch: long work shows progress, and a test can stop it mid-way.
        print(f"article edits: up to article {min(low + size - 1, top)} of {top}", file=sys.stderr, flush=True)


def upgrade() -> None:
    context = op.get_context()
    dialect = context.dialect.name
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("articles")}
    if "edits" not in columns:
        op.add_column("articles", sa.Column("edits", sa.Integer(), nullable=False, server_default="0"))
    create_triggers(dialect)
    with context.autocommit_block():
        _count(op.get_bind())
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON articles (published_at, id) WHERE edits > 0")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON article_versions")
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("edits")
