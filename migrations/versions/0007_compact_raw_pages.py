"""compact raw pages: zstd with dictionaries trained on the archive's own pages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

Every version keeps the page it was read from. zlib stored the replica's
pages at about 3.4 KB each; zstd with a dictionary trained on the portal's
own pages stores them at about a sixth of that, because what a templated
portal's pages share (header, navigation, footer, the article template) is
in the dictionary instead of in every row (README, "Performance").

Schema: a `dictionaries` table (the trained bytes, what they were trained on
and the ratio they reached on pages held out of the training), and on
`raw_pages` the `codec` (`zlib` for every row written before this revision)
and the `dictionary_id` a page was compressed with.

Data: if the archive holds enough article pages (DICTIONARY_AFTER_PAGES), a
dictionary is trained on the newest of them and every page stored without one
is recompressed with it, MIGRATION_BATCH_SIZE pages (2,000;
PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE overrides it) per transaction, each page read back and checked against its sha256 first (a page
that does not match is left as it is, for `verify` to report). The
recompression runs outside the migration's transaction, so a large archive
is not rewritten in one: killed at any point (SIGKILL included), the
schema and every finished batch stay, and `portal-archive db upgrade` again
finds the schema there, reuses the dictionary and goes on with the pages
still without one. An archive with fewer pages keeps its zlib rows; the
first crawl that brings it past the threshold trains the dictionary and
recompresses them (pipeline/archive/rawpages.py, `maintain`).

Downgrade drops the columns (their values kept aside in `raw_page_codecs`),
then writes every page back as zlib in batches, each its own transaction and
resumable like the upgrade, then drops the dictionaries.
"""
import logging
import zlib

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from pipeline.archive.defaults import migration_batch_size

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
FOREIGN_KEY = "fk_raw_pages_dictionary_id_dictionaries"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "dictionaries" not in inspector.get_table_names():
        op.create_table('dictionaries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('algorithm', sa.String(length=20), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('samples', sa.Integer(), nullable=False),
        sa.Column('sample_bytes', sa.BigInteger(), nullable=False),
        sa.Column('ratio', sa.Float(), nullable=False),
        sa.Column('bytes_per_page', sa.Float(), nullable=False),
        sa.Column('trained_through', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dictionaries'))
        )
    if "codec" not in {c["name"] for c in inspector.get_columns("raw_pages")}:
        _add_columns()
    # Commits the schema above, then the pages are rewritten in transactions of their own on a
    # connection of their own (the migration's is left idle meanwhile: on SQLite it holds no lock).
    with op.get_context().autocommit_block():
        with Session(op.get_bind().engine) as session:
            _compact(session)


def _add_columns() -> None:
    if op.get_context().dialect.name == "sqlite":
        # Columns added in place, the foreign key declared on the column: SQLite's ADD COLUMN
        # rewrites no row, where batch mode's copy of raw_pages rewrote every page in the
        # migration's one transaction (6.7 GB of write-ahead log at 2,000,000 versions).
        op.execute("ALTER TABLE raw_pages ADD COLUMN codec VARCHAR(20) DEFAULT 'zlib' NOT NULL")
        op.execute(f"ALTER TABLE raw_pages ADD COLUMN dictionary_id INTEGER CONSTRAINT {FOREIGN_KEY} "
                   "REFERENCES dictionaries (id)")
    else:
        op.add_column('raw_pages', sa.Column('codec', sa.String(length=20), server_default='zlib',
                                             nullable=False))
        op.add_column('raw_pages', sa.Column('dictionary_id', sa.Integer(), nullable=True))
        op.create_foreign_key(FOREIGN_KEY, 'raw_pages', 'dictionaries', ['dictionary_id'], ['id'])
    op.create_index(op.f('ix_raw_pages_dictionary_id'), 'raw_pages', ['dictionary_id'], unique=False)


def undo_interrupted_downgrade() -> None:
    """For the next revision's upgrade: after a downgrade killed among its batches the archive
    still says 0007, but the columns are gone (their values in raw_page_codecs, the pages done
    so far zlib), and an upgrade would not run this revision again. The columns come back,
    filled from raw_page_codecs (a page rewritten already is zlib: the columns' default)."""
    if not sa.inspect(op.get_bind()).has_table("raw_page_codecs"):
        return
    log.info("raw pages: a downgrade of revision 0007 was interrupted; its columns are put back")
    _add_columns()
    op.execute("UPDATE raw_pages SET "
               "codec = (SELECT c.codec FROM raw_page_codecs c WHERE c.id = raw_pages.id), "
               "dictionary_id = (SELECT c.dictionary_id FROM raw_page_codecs c WHERE c.id = raw_pages.id) "
               "WHERE id IN (SELECT id FROM raw_page_codecs)")
    op.execute("DROP TABLE raw_page_codecs")


def _compact(session: Session) -> None:
    from pipeline.archive import rawpages
    from pipeline.archive.defaults import DICTIONARY_AFTER_PAGES
    from pipeline.reading.compression import Dictionary

    dictionary = rawpages.current(session)
    if dictionary is None:
        if not rawpages.has_pages(session, DICTIONARY_AFTER_PAGES):
            log.info("raw pages: fewer than %d article pages, kept as they are", DICTIONARY_AFTER_PAGES)
            return
        row = rawpages.train(session, "trained by revision 0006 on the archive's newest pages")
        session.commit()
        dictionary = Dictionary(row.id, row.data)
        log.info("raw pages: dictionary %d trained on %d pages", row.id, row.samples)
    done = rawpages.recompress_all(session, dictionary, limit=migration_batch_size(),
                                   progress=lambda n: log.info("raw pages: %d recompressed", n))
    log.info("raw pages: %d recompressed with dictionary %d", done, dictionary.id)


def downgrade() -> None:
    """Every page back to zlib, the columns and the dictionaries dropped. The columns go first,
    while the pages are still small (on SQLite a copy of raw_pages made at zlib size would write
    every page once more), the pages' codecs kept meanwhile in `raw_page_codecs`; then the pages
    are rewritten in batches, each its own transaction, like the upgrade's, and a killed
    downgrade run again goes on from that table."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "codec" in {c["name"] for c in inspector.get_columns("raw_pages")}:
        op.execute("CREATE TABLE raw_page_codecs AS SELECT id, codec, dictionary_id FROM raw_pages "
                   "WHERE codec != 'zlib'")
        op.drop_index(op.f('ix_raw_pages_dictionary_id'), table_name='raw_pages')
        names = {fk["name"] for fk in inspector.get_foreign_keys("raw_pages")}
        if op.get_context().dialect.name == "sqlite" and FOREIGN_KEY not in names:
            # Declared on the column (this revision's upgrade): dropped with it, in place.
            op.execute("ALTER TABLE raw_pages DROP COLUMN dictionary_id")
            op.execute("ALTER TABLE raw_pages DROP COLUMN codec")
        else:
            # A table constraint (PostgreSQL, or an archive upgraded before SQLite's columns were
            # added in place): SQLite copies the table without it.
            with op.batch_alter_table('raw_pages', schema=None) as batch_op:
                batch_op.drop_constraint(FOREIGN_KEY, type_='foreignkey')
                batch_op.drop_column('dictionary_id')
                batch_op.drop_column('codec')
    with op.get_context().autocommit_block():
        with Session(bind.engine) as session:
            _as_zlib(session)
    op.execute("DROP TABLE raw_page_codecs")
    op.drop_table('dictionaries')


def _as_zlib(session: Session) -> None:
    """The pages raw_page_codecs names, rewritten as zlib, a batch per transaction."""
    from pipeline.reading.compression import CorruptPage, decompress

    dictionaries = dict(session.execute(sa.text("SELECT id, data FROM dictionaries")).all())

    def as_zlib(row) -> bytes:
        try:
            return zlib.compress(decompress(row.codec, row.body, dictionaries.get(row.dictionary_id)), 6)
        except CorruptPage:
            return row.body  # unreadable either way; verify says so

    done = 0
    while True:
        rows = session.execute(sa.text(
            "SELECT c.id, c.codec, c.dictionary_id, p.body FROM raw_page_codecs c JOIN raw_pages p ON p.id = c.id "
            "ORDER BY c.id LIMIT :n"), {"n": migration_batch_size()}).all()
        if not rows:
            break
        session.execute(sa.text("UPDATE raw_pages SET body = :body WHERE id = :id"),
                        [{"id": r.id, "body": as_zlib(r)} for r in rows])
        session.execute(sa.text("DELETE FROM raw_page_codecs WHERE id <= :last"), {"last": rows[-1].id})
        session.commit()
        done += len(rows)
        log.info("raw pages: %d back to zlib", done)
