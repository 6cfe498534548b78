"""search index: substring search of the current versions, for Chinese

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Chinese has no spaces, so word tokenizers find nothing useful; trigram
indexes answer "contains this substring" for any substring of three or more
characters.

SQLite: an FTS5 table with the trigram tokenizer over title, lede and body of
each article's open version (valid_to IS NULL). It is an external-content
table: the text stays in article_versions only, the FTS row id is the
version's id. Triggers keep it current, so every writer (crawl, backfill,
anything through pipeline.archive.versions) maintains it without knowing it exists:
inserting an open version adds it, closing a version (setting valid_to)
removes it. Versions are never edited otherwise, but the update trigger
handles any change of the indexed columns all the same.

Note for later revisions: a batch-mode rebuild of article_versions (SQLite
copy-and-rename) drops these triggers; such a revision must create them
again (see _create_sqlite_triggers).

PostgreSQL: the pg_trgm extension and partial GIN trigram indexes on the same
three columns of open versions, which serve `ILIKE '%…%'` directly.

Searches of one or two characters cannot use a trigram index on either
database; the web browser runs a LIKE scan for those (see web/search.py).
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

SEARCH_TABLE = "article_search"
SEARCHED_COLUMNS = ("title", "lede", "body_text")
TRIGGERS = ("article_search_version_insert", "article_search_version_update",
            "article_search_version_delete")
PG_INDEXES = {column: f"ix_article_versions_search_{column}" for column in SEARCHED_COLUMNS}


def _columns(prefix: str = "") -> str:
    return ", ".join(f"{prefix}{c}" for c in SEARCHED_COLUMNS)


def _create_sqlite_triggers() -> None:
    cols = _columns()
    add = f"INSERT INTO {SEARCH_TABLE}(rowid, {cols}) SELECT new.id, {_columns('new.')}"
    remove = (f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, {cols}) "
              f"SELECT 'delete', old.id, {_columns('old.')}")
    op.execute(f"""CREATE TRIGGER article_search_version_insert AFTER INSERT ON article_versions
        WHEN new.valid_to IS NULL BEGIN {add}; END""")
    # One trigger with two statements in this order: an external-content FTS
    # table must be told the old values are gone before the new ones arrive.
    op.execute(f"""CREATE TRIGGER article_search_version_update
        AFTER UPDATE OF valid_to, {cols} ON article_versions BEGIN
        {remove} WHERE old.valid_to IS NULL;
        {add} WHERE new.valid_to IS NULL;
        END""")
    op.execute(f"""CREATE TRIGGER article_search_version_delete AFTER DELETE ON article_versions
        WHEN old.valid_to IS NULL BEGIN {remove}; END""")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        op.execute(f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5({_columns()}, "
                   "content='article_versions', content_rowid='id', tokenize='trigram')")
        op.execute(f"INSERT INTO {SEARCH_TABLE}(rowid, {_columns()}) "
                   f"SELECT id, {_columns()} FROM article_versions WHERE valid_to IS NULL")
        _create_sqlite_triggers()
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column, name in PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON article_versions USING gin ({column} gin_trgm_ops) "
                       "WHERE valid_to IS NULL")
    # Other databases: no index; the browser's LIKE search still works, by scanning.


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for trigger in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")
    elif dialect == "postgresql":
        for name in PG_INDEXES.values():
            op.execute(f"DROP INDEX IF EXISTS {name}")
        # The extension stays: other objects of the database may use it.
