"""The archive's own defaults, stated once: the settings (ops/config.py), the engine factory and
the archive stage read them here. Plain values: importing them costs nothing."""

# Items written in one transaction: a kill loses at most this many, and a batch costs one commit.
BATCH_SIZE = 200
# How long a SQLite writer waits for another's lock before the write fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Raw pages (pipeline/archive/rawpages.py): the archive trains its first zstd dictionary once it
# holds this many article pages. On the replica a dictionary from 200 pages already compressed
# unseen pages to within 3 % of one from 1,000 (643 B against 624 B a page); 500 leaves margin for
# a portal whose pages vary more.
DICTIONARY_AFTER_PAGES = 500
# A dictionary is retired when the newest pages it compressed (this many) take DICTIONARY_DRIFT
# times the ratio it reached on pages it was not trained on: the portal changed its template. On
# the replica's redesign the old dictionary's pages took 1.85 times its figure; pages of the same
# template stay within a few percent of it, new articles' text included.
DICTIONARY_WINDOW = 200
DICTIONARY_DRIFT = 1.5
