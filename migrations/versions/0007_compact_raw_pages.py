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

Downgrade writes every page back as zlib (in the migration's transaction)
before it drops the columns and the table.
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
        # One batch: on SQLite a copy-and-rename of raw_pages (for the foreign key), in the
        # migration's transaction like the table above; raw_pages has no triggers to recreate.
        with op.batch_alter_table('raw_pages', schema=None) as batch_op:
            batch_op.add_column(sa.Column('codec', sa.String(length=20), server_default='zlib', nullable=False))
            batch_op.add_column(sa.Column('dictionary_id', sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f('ix_raw_pages_dictionary_id'), ['dictionary_id'], unique=False)
            batch_op.create_foreign_key(batch_op.f('fk_raw_pages_dictionary_id_dictionaries'), 'dictionaries',
                                        ['dictionary_id'], ['id'])
    # Commits the schema above, then the pages are rewritten in transactions of their own on a
    # connection of their own (the migration's is left idle meanwhile: on SQLite it holds no lock).
    with op.get_context().autocommit_block():
        with Session(op.get_bind().engine) as session:
            _compact(session)


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
    bind = op.get_bind()
    pages = sa.table("raw_pages", sa.column("id", sa.Integer), sa.column("codec", sa.String),
                     sa.column("dictionary_id", sa.Integer), sa.column("body", sa.LargeBinary))
    dictionaries = dict(bind.execute(sa.text("SELECT id, data FROM dictionaries")).all())
    from pipeline.reading.compression import CorruptPage, decompress

    def as_zlib(row) -> bytes:
        try:
            return zlib.compress(decompress(row.codec, row.body, dictionaries.get(row.dictionary_id)), 6)
        except CorruptPage:
            return row.body  # unreadable either way; verify says so

    last = 0
    while True:
        rows = bind.execute(sa.select(pages).where(pages.c.codec != 'zlib', pages.c.id > last)
                            .order_by(pages.c.id).limit(migration_batch_size())).all()
        if not rows:
            break
        bind.execute(sa.update(pages).where(pages.c.id == sa.bindparam("page"))
                     .values(body=sa.bindparam("zlib_body"), codec='zlib', dictionary_id=None),
                     [{"page": r.id, "zlib_body": as_zlib(r)} for r in rows])
        last = rows[-1].id
    with op.batch_alter_table('raw_pages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_raw_pages_dictionary_id_dictionaries'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_raw_pages_dictionary_id'))
        batch_op.drop_column('dictionary_id')
        batch_op.drop_column('codec')
    op.drop_table('dictionaries')
