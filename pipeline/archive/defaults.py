"""The archive's own defaults, stated once: the settings (ops/config.py), the engine factory and
the archive stage read them here. Plain values: importing them costs nothing."""

# Items written in one transaction: a kill loses at most this many, and a batch costs one commit.
BATCH_SIZE = 200
# How long a SQLite writer waits for another's lock before the write fails.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Versions a migration that rebuilds an index or rewrites rows handles per transaction (the unit a
# kill can lose); PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE overrides it (migrations cannot read ops' settings).
MIGRATION_BATCH_SIZE = 2_000
