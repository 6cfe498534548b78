"""The `portal-archive` command: thin commands over library functions, one module a group.

The group and what its commands share live here (settings, the database check, errors as one
line); the commands live in crawling.py (crawl, backfill, worker, daemon, status), archive.py
(history, diff, export, extract, reparse, verify) and admin.py (db, backup, restore, demo, web);
`replica` is the replica's own group (replica/cli.py), imported when asked for. Each command
imports what it needs when it runs, so `--help` and `extract` start fast.
"""
from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager

import click

from ops.config import ConfigError, Settings, load_settings
from pipeline.reading.profile import ProfileError, load_profile

EXIT_USAGE = 2


class Problem(click.ClickException):
    """A one-line error with exit code 2: bad input or an unusable archive."""

    exit_code = EXIT_USAGE

    def show(self, file=None):
        # Driver messages span lines ("…\n\tIs the server running…"); the error is one line.
        message = " ".join(self.format_message().split())
        click.echo(f"portal-archive: error: {message}", err=True, file=file)


class Busy(Problem):
    """Another crawl holds the archive's lease: try again later (exit code 3)."""

    exit_code = 3


def _raised(exc: BaseException, module: str, name: str) -> bool:
    """Whether `exc` is `module.name`, without importing the module: an error of a module that
    was never imported cannot have been raised (so `extract` never imports SQLAlchemy)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


@contextmanager
def problems():
    try:
        yield
    except (ConfigError, ProfileError) as exc:
        raise Problem(str(exc)) from None
    except Exception as exc:
        if _raised(exc, "pipeline.archive.db", "ArchiveError") or _raised(exc, "pipeline.archive.queries", "NotFound"):
            raise Problem(str(exc)) from None
        if _raised(exc, "ops.lease", "LeaseHeld"):
            raise Busy(str(exc)) from None
        if _raised(exc, "ops.crawl", "RunRefused"):  # the archive writer's Problem, or its LeaseHeld
            raise (Busy if exc.busy else Problem)(str(exc)) from None
        if _raised(exc, "sqlalchemy.exc", "SQLAlchemyError"):
            from pipeline.archive.db import first_line

            raise Problem(f"database error: {first_line(exc)}") from None
        raise


def check_database(url: str, *, create: bool) -> None:
    """pipeline.archive.db.check_database, its refusal as a one-line Problem."""
    from pipeline.archive.db import ArchiveError, check_database as check

    try:
        check(url, create=create)
    except ArchiveError as exc:
        raise Problem(str(exc)) from None


class _OneLineUsage(click.Group):
    """Click's own usage errors (a bad option value, an unknown option) as one line, exit code 2.

    Groups in LAZY are imported when asked for (click's "lazily loading subcommands"): the
    replica's command group imports the whole replica, 40 ms that every other command paid."""

    LAZY = {"replica": "replica.cli:cli"}

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx, name):
        if name in self.LAZY and name not in self.commands:
            module, _, attribute = self.LAZY[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name=name)
        return super().get_command(ctx, name)

    def parse_args(self, ctx, args):
        with _usage_as_problem():
            return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with _usage_as_problem():
            return super().invoke(ctx)


@contextmanager
def _usage_as_problem():
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # a bare group shows its help
    except click.UsageError as exc:
        names, ctx = [], exc.ctx
        while ctx is not None and ctx.parent is not None:  # the root's name is however we were started
            names.append(ctx.info_name)
            ctx = ctx.parent
        where = " ".join(reversed(names))
        raise Problem(f"{where}: {exc.format_message()}" if where else exc.format_message()) from None


def settings_from(ctx: click.Context, **overrides) -> Settings:
    with problems():
        base = load_settings(ctx.obj.get("config") if ctx.obj else None)
        settings = base.replace(**overrides)
        load_profile(settings.profile)
    return settings


db_option = click.option("--db", help="Database URL (default: env PORTAL_ARCHIVE_DB, else var/archive.sqlite).")


@click.group(cls=_OneLineUsage, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file (env PORTAL_ARCHIVE_CONFIG).")
@click.pass_context
def main(ctx, config):
    """Keep a complete, versioned archive of the portal 中国电源产业网."""
    ctx.obj = {"config": config}


def setup_logging(level: str, as_json: bool) -> None:
    """One line per event on stderr, readable or JSON."""
    import json
    import logging

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}, ensure_ascii=False)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The daemon's own events (runs started, finished, skipped) are always told.
    logging.getLogger("portal_archive").setLevel(min(logging.INFO, root.level))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def article_missing(ctx, ref: str) -> str:
    """What history and diff say when there is no archive at all: ARTICLE itself is checked first."""
    from pipeline.archive.queries import article_aid

    settings = settings_from(ctx)
    with problems():
        aid = article_aid(load_profile(settings.profile), ref, base_url=settings.base_url)
    return f"article {aid} is not in the archive"


@contextmanager
def archive_session(ctx, db, *, missing, upgrade: bool = True):
    """A session on an existing archive; `missing` (text, or a function) says what its absence means."""
    from pipeline.archive.db import ArchiveError, MissingArchive, check_database, open_archive, session_scope

    settings = settings_from(ctx, db=db)
    try:
        check_database(settings.db, create=False)
    except MissingArchive as exc:
        raise Problem(f"{missing() if callable(missing) else missing}: {exc}") from None
    except ArchiveError as exc:
        raise Problem(str(exc)) from None
    with problems():
        engine = open_archive(settings.db, auto_upgrade=upgrade and settings.is_default_db)
    try:
        with session_scope(engine) as session:
            yield session, settings, load_profile(settings.profile)
    finally:
        engine.dispose()


# The commands register themselves on `main` when their modules are imported.
from ops.cli import admin, archive, crawling  # noqa: E402,F401
