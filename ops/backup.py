"""Backups of the archive, taken while it is being written, and their restore; both verified.

The archive is the only copy of pages the portal may since have taken down, so a backup must be
consistent without stopping the daemon: it is the archive as of one moment, every committed batch
before it and none after.

- SQLite: the online backup API (sqlite3's `Connection.backup`), from a read transaction held open
  on the source for the whole copy. The archive runs in WAL mode, where a reader never blocks a
  writer: the crawl goes on committing batches to the WAL while the backup copies the snapshot it
  began with, in steps of `STEP_PAGES` pages. (Without the read transaction, SQLite would restart
  the copy every time another process commits, and a busy crawl could starve it.) The copy is
  written beside DEST and renamed into place, so DEST is never half a backup.
- PostgreSQL: `pg_dump --format=custom` (one file, compressed, restorable table by table) and
  `pg_restore`, found on PATH or in /usr/lib/postgresql/*/bin, the newest first (pg_dump must be
  at least the server's version). pg_dump reads one snapshot; `verify` runs inside that very
  snapshot (exported by our transaction, imported by pg_dump), so what was verified is what was
  dumped.

The backup is checked with `verify` (pipeline/archive/verify.py) and so is the restored archive.
"""
from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from ops.lease import LeaseInfo, current_holder
from pipeline.archive.db import make_engine, redact_url
from pipeline.archive.verify import VerifyReport, verify_archive

# Pages copied per step of SQLite's backup (4 MB at the default 4 KB page): progress is told
# between steps, and a step holds nothing a writer waits for in WAL mode.
STEP_PAGES = 1024
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    """The backup or restore cannot be done as asked; the message says why, on one line."""


@dataclass
class Copied:
    """A backup written or an archive restored, and what `verify` found in it."""

    source: str
    target: str
    bytes: int
    seconds: float
    report: VerifyReport


Progress = Callable[[int, int], None]  # (pages done, pages in all)


def backup(url: str, dest: Path, *, force: bool = False, progress: Progress | None = None) -> Copied:
    """Write a consistent copy of the archive at `url` to the file `dest`, then verify it."""
    dest = Path(dest)
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory: name the backup file")
    if dest.exists() and not force:
        raise BackupError(f"{dest} already exists (use --force to replace it)")
    if not dest.parent.is_dir():
        raise BackupError(f"cannot write {dest}: its directory {dest.parent} does not exist")
    started = time.monotonic()
    if _is_sqlite(url):
        source = _sqlite_path(url)
        partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
        try:
            _sqlite_copy(source, partial, progress, hold_snapshot=True)
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
        report = _verify(f"sqlite:///{dest}")
    else:
        report = _pg_dump(url, dest)
    return Copied(redact_url(url), str(dest), dest.stat().st_size, time.monotonic() - started, report)


def restore(src: Path, url: str, *, force: bool = False, progress: Progress | None = None) -> Copied:
    """Put the backup `src` into the archive at `url`, refusing one that holds anything unless
    `force`; then verify it."""
    src = Path(src)
    if not src.is_file():
        raise BackupError(f"there is no backup at {src}")
    magic = src.read_bytes()[:16] if src.stat().st_size else b""
    sqlite = _is_sqlite(url)
    expected = SQLITE_MAGIC if sqlite else PGDUMP_MAGIC
    if not magic.startswith(expected):
        kind = "a SQLite archive" if sqlite else "a pg_dump custom-format file"
        raise BackupError(f"{src} is not {kind}, which is what {redact_url(url)} restores from")
    if not _empty(url):
        if not force:
            raise BackupError(f"{redact_url(url)} is not empty: restoring would overwrite it "
                              "(use --force to replace its contents)")
        crawling = _crawled_by(url)
        if crawling is not None:
            raise BackupError(f"{redact_url(url)} is being crawled ({crawling.describe()}): stop that "
                              "crawl or daemon first; a crawl going on would write into the restored archive")
    started = time.monotonic()
    if sqlite:
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(src, target, progress, hold_snapshot=False)
    else:
        _pg_restore(src, url, clean=force)
    return Copied(str(src), redact_url(url), src.stat().st_size, time.monotonic() - started, _verify(url))


# --- SQLite -------------------------------------------------------------------------------------

def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{redact_url(url)} is not a SQLite file")
    return Path(database)


def _sqlite_copy(source: Path, target: Path, progress: Progress | None, hold_snapshot: bool) -> None:
    src = sqlite3.connect(source, timeout=30, isolation_level=None)
    dst = sqlite3.connect(target, timeout=30)
    try:
        if hold_snapshot:
            # The read transaction begins at its first read: from here on the copy is of this moment.
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        src.backup(dst, pages=STEP_PAGES,
                   progress=(lambda _status, left, total: progress(total - left, total)) if progress else None)
        if hold_snapshot:
            src.execute("COMMIT")
    except sqlite3.Error as exc:
        raise BackupError(f"copying {source} to {target} failed: {exc}") from None
    finally:
        dst.close()
        src.close()


def _empty(url: str) -> bool:
    if _is_sqlite(url):
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return True
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return not inspect(conn).get_table_names()
    finally:
        engine.dispose()


def _crawled_by(url: str) -> LeaseInfo | None:
    """Who holds the archive's crawl lease, if a live process does (ops/lease.py)."""
    engine = make_engine(url)
    try:
        if "leases" not in inspect(engine).get_table_names():
            return None
        return current_holder(engine, alive=True)
    finally:
        engine.dispose()


def _verify(url: str, session: Session | None = None) -> VerifyReport:
    if session is not None:
        return verify_archive(session)
    engine = make_engine(url)
    try:
        with Session(engine) as own:
            return verify_archive(own)
    finally:
        engine.dispose()


# --- PostgreSQL ---------------------------------------------------------------------------------

def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: the newest of Debian's versioned installs, else the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major, reverse=True)
    path = found[0] if found else shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed (it comes with PostgreSQL's client tools: "
                          f"apt-get install postgresql-client)")
    return path


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _libpq(url: str) -> tuple[str, dict]:
    """The URL as libpq reads it (no driver name), with the password moved to the environment so it
    never shows in a process listing."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict, what: str) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else f'exit {result.returncode}'}")


def _pg_dump(url: str, dest: Path) -> VerifyReport:
    libpq, env = _libpq(url)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    engine: Engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            with conn.begin():
                snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
                _run([pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-owner",
                      f"--file={partial}", f"--dbname={libpq}"], env, "pg_dump")
                # The same snapshot pg_dump read: what is verified is what was dumped.
                report = _verify(url, Session(bind=conn))
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
        engine.dispose()
    return report


def _pg_restore(src: Path, url: str, clean: bool) -> None:
    libpq, env = _libpq(url)
    _run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
          *(["--clean", "--if-exists"] if clean else []), f"--dbname={libpq}", str(src)], env, "pg_restore")
