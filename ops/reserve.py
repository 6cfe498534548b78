"""A little disk kept free beside a SQLite archive, so a crawl that fills the disk can still say so.

When the filesystem under a SQLite archive fills up, the batch being written fails (SQLITE_FULL)
and is rolled back whole; but closing the run with that reason is a write too, and the WAL has no
room left for it: the run would stay `running`, its reason lost. So a crawl sets aside
`RESERVE_BYTES` in a file beside the archive (`<archive>-reserve`) when it starts and gives it
back just before it closes its run: with the disk full, that is the room the run's last update,
the lease's release and SQLite's WAL need. A run killed before it could give it back leaves the
file, and the next run takes it over. PostgreSQL keeps its own reserve (its server refuses writes
on a full disk without losing itself), so there is nothing to do there.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import make_url

RESERVE_BYTES = 2 * 2**20  # a run's last update and the lease's release are a few WAL frames of 4 KB
log = logging.getLogger(__name__)


class DiskReserve:
    def __init__(self, db_url: str):
        url = make_url(db_url)
        database = url.database if url.get_backend_name() == "sqlite" else None
        usable = database and database != ":memory:" and not database.startswith("file:")
        self.path = Path(f"{database}-reserve") if usable else None

    def take(self) -> "DiskReserve":
        if self.path is None:
            return self
        try:
            with open(self.path, "ab") as fh:
                os.posix_fallocate(fh.fileno(), 0, RESERVE_BYTES)
        except OSError as exc:  # already short of space: go on without; the crawl says if the disk fills
            log.warning("could not set aside %d bytes beside the archive (%s)", RESERVE_BYTES, exc.strerror or exc)
            self.release()
        return self

    def release(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
