"""The `portal-archive` command: thin commands over library functions."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import datetime, timezone

import click

from pipeline.config import ConfigError, Settings, load_settings, redact_url
from pipeline.db import ArchiveError
from spiders.profile import ProfileError, load_profile

EXIT_USAGE = 2


class Problem(click.ClickException):
    """A one-line error with exit code 2: bad input or an unusable archive."""

    exit_code = EXIT_USAGE

    def show(self, file=None):
        click.echo(f"portal-archive: error: {self.format_message()}", err=True, file=file)


@contextmanager
def problems():
    from pipeline.query import NotFound

    try:
        yield
    except (ConfigError, ArchiveError, ProfileError, NotFound) as exc:
        raise Problem(str(exc)) from None


def settings_from(ctx: click.Context, **overrides) -> Settings:
    with problems():
        base = load_settings(ctx.obj.get("config") if ctx.obj else None)
        settings = base.replace(**overrides)
        load_profile(settings.profile)
    return settings


db_option = click.option("--db", help="Database URL (default: env PORTAL_ARCHIVE_DB, else var/archive.sqlite).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file (env PORTAL_ARCHIVE_CONFIG).")
@click.pass_context
def main(ctx, config):
    """Keep a complete, versioned archive of the portal 中国电源产业网."""
    ctx.obj = {"config": config}


@main.command()
@click.option("--base-url", help="The portal's address (env PORTAL_ARCHIVE_BASE_URL).")
@click.option("--channel", "channels", multiple=True, help="Only this channel (slug or name); repeatable.")
@click.option("--revisit", type=click.Choice(["all", "none"]), default="all", show_default=True,
              help="Revisit every archived article (to see edits and takedowns), or none.")
@db_option
@click.pass_context
def crawl(ctx, base_url, channels, revisit, db):
    """Crawl the portal once into the archive."""
    from pipeline.crawl import run_crawl

    settings = settings_from(ctx, base_url=base_url, db=db)
    with problems():
        for channel in channels:
            load_profile(settings.profile).channel(channel)
        summary = run_crawl(settings, channels=list(channels) or None, revisit=revisit)
    click.echo(format_summary(summary))
    sys.exit(0 if summary.status == "succeeded" else 1)


def format_summary(s) -> str:
    return (f"run {s.run_id} {s.status}: {s.pages_fetched} pages, {s.articles_seen} articles seen, "
            f"{s.articles_new} new, {s.versions_written} versions written, {s.unchanged} unchanged, "
            f"{s.taken_down} taken down, {s.restored} restored, {s.duplicates} duplicates linked, "
            f"{s.quarantined} quarantined, {s.fetch_failures} failed fetches"
            + (f"\n  error: {s.error}" if s.error else ""))


@main.group()
def db():
    """The archive's schema."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx, db):
    """Bring the database to the newest schema revision."""
    from pipeline.db import current_revision, head_revision, make_engine
    from pipeline.db import upgrade as run_upgrade

    settings = settings_from(ctx, db=db)
    with problems():
        run_upgrade(settings.db)
        engine = make_engine(settings.db)
        revision = current_revision(engine)
        engine.dispose()
    click.echo(f"{redact_url(settings.db)} is at revision {revision} (head {head_revision()})")


@main.command()
@click.argument("article")
@db_option
@click.pass_context
def history(ctx, article, db):
    """List the versions of ARTICLE (an aid or any URL of it)."""
    from pipeline.query import find_article, versions_of

    with _session(ctx, db) as (session, profile):
        with problems():
            found = find_article(session, profile, article)
        versions = versions_of(session, found)
        click.echo(f"article {found.aid} {found.canonical_url} [{found.status}]"
                   + (f" duplicate of {found.duplicate_of.canonical_url}" if found.duplicate_of else ""))
        for v in versions:
            until = f"{v.valid_to:%Y-%m-%d %H:%M:%S}" if v.valid_to else "now"
            click.echo(f"  v{v.version} {v.change:<10} {v.valid_from:%Y-%m-%d %H:%M:%S} → {until}  "
                       f"{v.content_hash[:12]}  {v.title}")


@main.command()
@click.argument("article")
@click.option("--from", "from_", type=int, help="Older version number (default: the one before --to).")
@click.option("--to", type=int, help="Newer version number (default: the current one).")
@click.option("--full", is_flag=True, help="Show unchanged paragraphs too.")
@db_option
@click.pass_context
def diff(ctx, article, from_, to, full, db):
    """Show what changed in ARTICLE between two versions."""
    from pipeline.diffing import version_diff
    from pipeline.query import find_article, version_of

    with _session(ctx, db) as (session, profile):
        with problems():
            found = find_article(session, profile, article)
            to = to or found.current_version
            from_ = from_ or max(1, to - 1)
            old, new = version_of(session, found, from_), version_of(session, found, to)
        click.echo(version_diff(old, new, context=None if full else 1))


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(f"--as-of {value!r} is not an ISO 8601 time (e.g. 2026-02-12T08:00:00+08:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="JSON lines (one object per row) or CSV (formula-like cells neutralized).")
@click.option("--all-versions", is_flag=True, help="One row per version instead of per article.")
@click.option("--as-of", help="The archive as it stood at this time (ISO 8601; UTC if no offset).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File (default stdout).")
@db_option
@click.pass_context
def export(ctx, fmt, all_versions, as_of, output, db):
    """Export the archive (the public contract: one row per article or version)."""
    from pipeline.export import write_csv, write_jsonl
    from pipeline.query import export_rows

    when = parse_time(as_of)
    with _session(ctx, db) as (session, profile):
        rows = export_rows(session, profile, all_versions=all_versions, as_of=when)
        writer = write_csv if fmt == "csv" else write_jsonl
        if output:
            with open(output, "w", encoding="utf-8", newline="") as out:
                count = writer(rows, out)
            click.echo(f"wrote {count} rows to {output}", err=True)
        else:
            writer(rows, click.get_text_stream("stdout"))


@contextmanager
def _session(ctx, db):
    from pipeline.db import open_archive, session_scope

    settings = settings_from(ctx, db=db)
    with problems():
        engine = open_archive(settings.db, auto_upgrade=settings.is_default_db)
    try:
        with session_scope(engine) as session:
            yield session, load_profile(settings.profile)
    finally:
        engine.dispose()


@main.command()
@click.option("--articles", default=400, show_default=True, help="Size of the replica to crawl.")
@click.option("--seed", default=1, show_default=True, help="Seed of the replica and its changes.")
@click.option("--db", default="sqlite:///var/demo.sqlite", show_default=True,
              help="Database for the demo (emptied first when it is a SQLite file).")
def demo(articles, seed, db):
    """Replica → crawl → a round of portal changes → crawl again → what the archive holds."""
    from pipeline.demo import run_demo

    with problems():
        run_demo(articles=articles, seed=seed, db=db, echo=click.echo)


def _attach_replica():
    from replica.cli import cli as replica

    main.add_command(replica, name="replica")


_attach_replica()

if __name__ == "__main__":
    main()
