"""The archive's own defaults, stated once: the settings (ops/config.py), the engine factory and
the archive stage read them here. Plain values: importing them costs nothing."""

# Items written in one transaction: a kill loses at most this many, and a batch costs one commit.
# With a writer process up to three batches wait for it (spiders/stages.py), and what waits when
# the last page arrives is written after it, the other core idle: 100 against 200 took a
# 5,000-article crawl 8.04 s against 8.17 (medians of five alternating runs, 2026-12-07), 20,000
# articles 30.0-30.1 s against 30.2-30.8, and a kill loses half as much.
BATCH_SIZE = 100
# How long a SQLite writer waits for another's lock before the write fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Bytes a SQLite archive's write-ahead log is cut back to after a checkpoint (pipeline/archive/db.py).
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Rows (versions, raw pages) a migration that rebuilds an index or rewrites rows handles per
# transaction (the unit a kill can lose); PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE overrides it
# (migrations cannot read ops' settings): see migration_batch_size().
MIGRATION_BATCH_SIZE = 2_000
# Raw pages (pipeline/archive/rawpages.py): the archive trains its first zstd dictionary once it
# holds this many article pages. On the replica a dictionary from 200 pages already compressed
# unseen pages to within 3 % of one from 1,000 (643 B against 624 B a page); 500 leaves margin for
# a portal whose pages vary more.
DICTIONARY_AFTER_PAGES = 500
# A dictionary is retired when the newest pages it compressed (this many) take DICTIONARY_DRIFT
# times the bytes (over their size as fetched) of the first this many it compressed after its
# training: the portal changed its template. On the replica's redesign the old dictionary's pages
# took 1.85 times as much; new articles in the same template stay within a few percent.
DICTIONARY_WINDOW = 200
DICTIONARY_DRIFT = 1.5


def migration_batch_size() -> int:
    """MIGRATION_BATCH_SIZE, or PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE when set (at least 1)."""
    import os

    return max(1, int(os.environ.get("PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE") or MIGRATION_BATCH_SIZE))
