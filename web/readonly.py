"""A read-only view of the archive: the browser can look, never write.

SQLite is opened with a `mode=ro` URI plus `PRAGMA query_only`, PostgreSQL
sessions are READ ONLY: a bug in the browser cannot change the archive, and
the file may even be read-only on disk. Each request reads inside one
transaction, so a page never mixes two states of a crawl that is writing.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from pipeline.archive.db import SQLITE_BUSY_TIMEOUT_MS, ArchiveError, current_revision, head_revision, redact_url

POOL_SIZE = 8  # uvicorn's thread pool runs sync handlers; more connections would only wait


def open_readonly(url: str) -> Engine:
    """An engine that cannot write, for an archive at the code's schema revision."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ArchiveError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed.database)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE)
        event.listen(engine, "connect", _postgresql_read_only)
    try:
        revision = current_revision(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise ArchiveError(f"cannot open database {redact_url(url)}: {exc.orig}") from None
    head = head_revision()
    if revision != head:
        engine.dispose()
        where = "not an archive (no schema revision)" if revision is None else f"at revision {revision}"
        raise ArchiveError(f"the archive database is {where}, the web browser expects {head}: "
                           "run `portal-archive db upgrade` first")
    return engine


def _sqlite_engine(database: str | None) -> Engine:
    if not database or database == ":memory:":
        raise ArchiveError("the web browser needs an archive file, not an in-memory database")
    path = Path(database).resolve()
    if not path.is_file():
        raise ArchiveError(f"there is no archive at {database}: run `portal-archive crawl` first")
    uri = f"file:{quote(str(path))}?mode=ro"

    def connect():
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False,
                               timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA query_only=ON")
        # Transactions are begun explicitly below, so that all reads of one
        # request see one snapshot (pysqlite would only BEGIN before a write).
        conn.isolation_level = None
        return conn

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=POOL_SIZE)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def _postgresql_read_only(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


@contextmanager
def reading(engine: Engine):
    """One session for one request. Closing it ends the read transaction (the pool rolls it
    back: there is nothing to commit) and keeps what was loaded readable for the template."""
    with Session(engine) as session:
        yield session
