"""Commands that look after the archive and the replica: db upgrade, backup, restore, demo, web, replica."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from ops.cli import (
    Problem,
    check_database,
    db_option,
    main,
    problems,
    settings_from,
)


@main.group()
def db():
    """The archive's schema."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx, db):
    """Bring the database to the newest schema revision."""
    from pipeline.archive.db import current_revision, head_revision, make_engine, redact_url
    from pipeline.archive.db import upgrade as run_upgrade

    settings = settings_from(ctx, db=db)
    check_database(settings.db, create=True)
    with problems():
        run_upgrade(settings.db)
        engine = make_engine(settings.db)
        revision = current_revision(engine)
        engine.dispose()
    click.echo(f"{redact_url(settings.db)} is at revision {revision} (head {head_revision()})")


@main.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@db_option
@click.pass_context
def backup(ctx, dest, force, db):
    """Write a consistent backup of the archive to DEST, even while it is being crawled; verify it.

    SQLite: a copy of the archive file made with SQLite's online backup API. PostgreSQL: a
    pg_dump custom-format file (restore it with `portal-archive restore`, or pg_restore).
    Exit 1 if the backup fails verify.
    """
    from ops.backup import backup as take_backup

    settings = settings_from(ctx, db=db)
    check_database(settings.db, create=False)
    with problems(), _backup_problems():
        copied = take_backup(settings.db, dest, force=force, progress=_pages_progress())
    click.echo(f"backed up {copied.source} to {copied.target}: {_size(copied.bytes)} in {copied.seconds:.1f} s")
    _report(copied)


@main.command()
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the contents of an archive that is not empty.")
@db_option
@click.pass_context
def restore(ctx, src, force, db):
    """Restore the backup SRC (made by `portal-archive backup`) into the archive; verify it.

    Refuses an archive that holds anything unless --force. Exit 1 if the restored archive fails verify.
    """
    from ops.backup import restore as restore_backup

    settings = settings_from(ctx, db=db)
    check_database(settings.db, create=True)
    with problems(), _backup_problems():
        copied = restore_backup(src, settings.db, force=force, progress=_pages_progress())
    click.echo(f"restored {copied.source} into {copied.target}: {_size(copied.bytes)} in {copied.seconds:.1f} s")
    _report(copied)


@contextmanager
def _backup_problems():
    from ops.backup import BackupError

    try:
        yield
    except BackupError as exc:
        raise Problem(str(exc)) from None


def _pages_progress():
    if not sys.stderr.isatty():
        return None
    return lambda done, total: click.echo(f"\r  {done}/{total} pages copied", err=True, nl=done >= total)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _report(copied) -> None:
    click.echo(f"verify {copied.target}:")
    click.echo("\n".join(copied.report.lines()))
    sys.exit(0 if copied.report.ok else 1)


@main.command()
@click.option("--articles", default=400, show_default=True, help="Size of the replica to crawl.")
@click.option("--seed", default=1, show_default=True, help="Seed of the replica and its changes.")
@click.option("--db", default="sqlite:///var/demo.sqlite", show_default=True,
              help="Database for the demo (emptied first when it is a SQLite file).")
def demo(articles, seed, db):
    """Replica → crawl → a round of portal changes → crawl again → what the archive holds."""
    from ops.demo import run_demo

    check_database(db, create=True)
    with problems():
        run_demo(articles=articles, seed=seed, db=db, echo=click.echo)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but the loopback needs env PORTAL_ARCHIVE_WEB_TOKEN.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@db_option
@click.pass_context
def web(ctx, host, port, db):
    """Browse the archive in a web browser (read-only), with a JSON API."""
    import os

    from web import WebError, serve

    settings = settings_from(ctx, db=db)
    with problems():
        try:
            serve(settings.db, host=host, port=port, token=os.environ.get("PORTAL_ARCHIVE_WEB_TOKEN"),
                  profile=settings.profile, echo=click.echo)
        except WebError as exc:
            raise Problem(str(exc)) from None

