"""Engines, sessions and schema revisions. Engines are built here, never at import time.

Alembic (0.17 s to import, 0.07 more to load the revision scripts) is imported only by the
functions that change a revision or list them: opening an archive at head, as every command and
every crawl's writer does, compares one row of its version table with HEAD_REVISION.
"""
from __future__ import annotations

import importlib.util
import re
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.archive.defaults import SQLITE_BUSY_TIMEOUT_MS, WAL_SIZE_LIMIT

if TYPE_CHECKING:
    from alembic.config import Config

# The migrations' folder, found without importing the package: its env.py imports the models.
MIGRATIONS_DIR = Path(importlib.util.find_spec("migrations").origin).parent


class ArchiveError(RuntimeError):
    """The archive cannot be used as asked; the message says what to do."""


class MissingArchive(ArchiveError):
    """A command that only reads was pointed at a SQLite file that does not exist."""

    def __init__(self, path: Path):
        super().__init__(f"there is no archive at {path} (the file does not exist)")


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def first_line(exc: BaseException) -> str:
    """A database error's reason in one line (a driver's message spans several)."""
    reason = getattr(exc, "orig", None) or exc
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__


def check_database(url: str, *, create: bool) -> None:
    """Refuse a database that cannot be used (ArchiveError, one line), before anything is written.

    SQLite creates a missing file on first connect (and make_engine its directory), so a command
    that only reads looks first: an archive that does not exist is reported, never created empty.
    For a command that creates the archive, its directory is made here or clearly refused.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        masked = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)  # make_url could not find the password
        raise ArchiveError(f"not a database URL: {masked!r}") from None
    shown = redact_url(url)
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        if path.is_dir():
            raise ArchiveError(f"cannot open database {shown}: {path} is a directory")
        if not path.exists():
            if not create:
                raise MissingArchive(path)
            blocker = next((p for p in path.parents if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                raise ArchiveError(f"cannot create database {shown}: {blocker} is a file, not a directory")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ArchiveError(f"cannot create database {shown}: its directory {path.parent} "
                                   f"cannot be created ({exc.strerror or exc})") from None
            return  # the command itself creates the file
    try:
        engine = make_engine(url)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except ImportError as exc:
        raise ArchiveError(f"cannot open database {shown}: its driver is not installed ({exc})") from None
    except (SQLAlchemyError, OSError) as exc:
        reason = first_line(exc)
        if parsed.password:
            reason = reason.replace(str(parsed.password), "***")
        raise ArchiveError(f"cannot open database {shown}: {reason}") from None


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in passwords would be taken for interpolation.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    return cfg


def make_engine(url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, writer: bool = False) -> Engine:
    """An engine for the archive. `writer` is for the archive stage's batches:
    on SQLite they take the write lock when they begin (BEGIN IMMEDIATE), so
    concurrent writers queue on the busy timeout instead of failing when a
    read snapshot turns stale."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ArchiveError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms=busy_timeout_ms))
        if writer:
            event.listen(engine, "connect", _driver_autocommit)
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True)


def _driver_autocommit(dbapi_connection, _record):
    # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver's own deferred one.
    dbapi_connection.isolation_level = None


def _sqlite_pragmas(dbapi_connection, _record, busy_timeout_ms: int):
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # WAL lets readers (history, export, web) work while a crawl writes. Only for an
    # archive, or a file with no tables yet: a database that holds someone else's tables
    # is refused by open_archive, and is left as it was, journal mode included.
    tables = {name for (name,) in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables or "alembic_version" in tables:
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A large transaction (a migration's) grows the write-ahead log to its size, and SQLite
    # keeps the file that large while any connection stays open (6.9 GB after revision 0007's
    # downgrade at 2,000,000 versions): truncated to this once a checkpoint has emptied it.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


# The newest revision in migrations/versions, the one the code expects an archive at. Written
# here so that no archive is opened by importing Alembic and loading every revision script (0.24 s
# of every command and crawl); tests/test_migrations.py checks it against Alembic's own head, so a
# new revision cannot leave it behind.
HEAD_REVISION = "0012"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def head_revision() -> str:
    return HEAD_REVISION


def current_revision(engine: Engine) -> str | None:
    """The revision the archive is at, as Alembic records it (None: no revision, or no archive)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        recorded = list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    if len(recorded) > 1:  # the history is linear (tests/test_migrations.py): never written by Alembic
        raise ArchiveError(f"the archive records several revisions ({', '.join(sorted(recorded))}): "
                           "it was migrated by something other than portal-archive")
    return recorded[0] if recorded else None


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def open_archive(url: str, *, auto_upgrade: bool, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for an archive at the head revision.

    The default SQLite file, and any brand-new SQLite file, is brought to head
    on its own; any other database behind head is refused with the command
    that fixes it, because silently migrating a shared production database is
    not ours to decide.
    """
    engine = make_engine(url, busy_timeout_ms)
    try:
        current = current_revision(engine)
        brand_new_sqlite = (engine.dialect.name == "sqlite" and current is None
                            and not inspect(engine).get_table_names())
    except OperationalError as exc:
        engine.dispose()
        raise ArchiveError(f"cannot open database {redact_url(url)}: {exc.orig}") from None
    head = head_revision()
    if current != head:
        if auto_upgrade or brand_new_sqlite:
            upgrade(url)
        else:
            engine.dispose()
            where = "empty" if current is None else f"at revision {current}"
            raise ArchiveError(
                f"the archive database is {where}, the code expects {head}: "
                "run `portal-archive db upgrade` first"
            )
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine):
    """One session for one job: committed at the end, rolled back on error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
