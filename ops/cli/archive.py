"""Commands that read the archive (history, diff, export, verify), a page (extract), or the
archive's stored pages again (reparse)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import datetime, timezone

import click

from ops.cli import (
    Problem,
    archive_session,
    article_missing,
    check_database,
    db_option,
    main,
    problems,
    settings_from,
)
from ops.cli.crawling import parse_day
from pipeline.reading.profile import load_profile



@contextmanager
def progress_bar(unit: str, desc: str, shown: bool):
    """A progress bar on stderr, as the `progress(done, total)` callback a long command takes;
    None when not shown."""
    if not shown:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(unit=unit, file=sys.stderr, dynamic_ncols=True, desc=desc)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()


@main.command()
@click.argument("article")
@db_option
@click.pass_context
def history(ctx, article, db):
    """List the versions of ARTICLE (an aid or any URL of it)."""
    from pipeline.archive.queries import find_article, versions_of

    with archive_session(ctx, db, missing=lambda: article_missing(ctx, article)) as (session, settings, profile):
        with problems():
            found = find_article(session, profile, article, base_url=settings.base_url)
        versions = versions_of(session, found)
        click.echo(f"article {found.aid} {found.canonical_url} [{found.status}]"
                   + (f" duplicate of {found.duplicate_of.canonical_url}" if found.duplicate_of else ""))
        for v in versions:
            until = f"{v.valid_to:%Y-%m-%d %H:%M:%S}" if v.valid_to else "now"
            click.echo(f"  v{v.version} {v.change:<10} {v.valid_from:%Y-%m-%d %H:%M:%S} → {until}  "
                       f"{v.content_hash[:12]}  {v.title}")


@main.command()
@click.argument("article")
@click.option("--from", "from_", type=click.IntRange(min=1),
              help="Older version number (default: the one before --to).")
@click.option("--to", type=click.IntRange(min=1), help="Newer version number (default: the current one).")
@click.option("--full", is_flag=True, help="Show unchanged paragraphs too.")
@db_option
@click.pass_context
def diff(ctx, article, from_, to, full, db):
    """Show what changed in ARTICLE between two versions."""
    from zoneinfo import ZoneInfo

    from pipeline.archive.diff import render_text, version_diff
    from pipeline.archive.queries import find_article, version_of

    with archive_session(ctx, db, missing=lambda: article_missing(ctx, article)) as (session, settings, profile):
        with problems():
            found = find_article(session, profile, article, base_url=settings.base_url)
            to = found.current_version if to is None else to
            from_ = max(1, to - 1) if from_ is None else from_
            new = version_of(session, found, to)  # first: --from may only be its default
            old = version_of(session, found, from_)
        click.echo(render_text(version_diff(old, new, ZoneInfo(profile.timezone), context=None if full else 1)))


def parse_time(value: str | None, option: str = "--as-of") -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(f"{option} {value!r} is not an ISO 8601 time (e.g. 2026-02-12T08:00:00+08:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "warc"]), default="jsonl", show_default=True,
              help="JSON lines (one object per row), CSV (formula-like cells neutralized), or WARC files of the "
                   "raw pages (with -o DIR/PREFIX; a CDXJ index beside them).")
@click.option("--all-versions", is_flag=True, help="One row per version instead of per article.")
@click.option("--as-of", help="The archive as it stood at this time (ISO 8601; UTC if no offset).")
@click.option("--since", help="WARC: only pages fetched at or after this time (ISO 8601; UTC if no offset).")
@click.option("--channel", help="WARC: only this channel (slug or name).")
@click.option("--article", help="WARC: only this article (an aid or any URL of it).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=1_000_000_000, show_default=True,
              help="WARC: start a new file once one is this large.")
@click.option("-o", "--output", type=click.Path(writable=True),
              help="File (default stdout); for WARC, DIR/PREFIX (files PREFIX-00001.warc.gz, …, PREFIX.cdxj).")
@db_option
@click.pass_context
def export(ctx, fmt, all_versions, as_of, since, channel, article, max_bytes, output, db):
    """Export the archive (the public contract: one row per article or version), or its pages as WARC."""
    if fmt == "warc":
        _export_warc(ctx, as_of, since, channel, article, max_bytes, output, db)
        return
    if since or channel or article:
        raise Problem("--since, --channel and --article apply to --format warc")
    from pipeline.archive.export import export_rows, write_csv, write_jsonl

    when = parse_time(as_of)
    with archive_session(ctx, db, missing=lambda: "nothing to export") as (session, _settings, profile):
        rows = export_rows(session, profile, all_versions=all_versions, as_of=when)
        writer = write_csv if fmt == "csv" else write_jsonl
        if output:
            try:
                out = open(output, "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise Problem(f"cannot write {output}: {exc.strerror or exc}") from None
            with out:
                count = writer(rows, out)
            click.echo(f"wrote {count} rows to {output}", err=True)
        else:
            writer(rows, sys.stdout)


def _export_warc(ctx, as_of, since, channel, article, max_bytes, output, db) -> None:
    from pipeline.archive.queries import article_aid
    from pipeline.archive.warc import write_warc

    if as_of:
        raise Problem("--as-of does not apply to --format warc: a WARC holds every capture (see --since)")
    if not output:
        raise Problem("--format warc needs -o DIR/PREFIX")
    when = parse_time(since, "--since")
    with archive_session(ctx, db, missing=lambda: "nothing to export") as (session, settings, profile):
        with problems():
            name = profile.channel(channel).name if channel else None
            aid = article_aid(profile, article, base_url=settings.base_url, session=session) if article else None
            try:
                result = write_warc(session, output, since=when, channel=name, aid=aid, max_bytes=max_bytes,
                                    info={"description": f"{profile.name} pages archived by portal-archive"})
            except OSError as exc:
                raise Problem(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {result.responses} responses and {result.revisits} revisits ({result.versions} versions, "
               f"{result.quarantined} quarantined pages) in {len(result.files)} WARC files, {result.bytes:,} bytes"
               + (f"; index {result.index}" if result.index else ""), err=True)


@main.command()
@click.argument("page", metavar="FILE|URL")
@click.option("--method", type=click.Choice(["auto", "profile", "fallback"]), default="auto", show_default=True,
              help="How to read the page: the profile, the generic fallback, or the profile and the fallback "
                   "when the profile finds no title, body or date (what a crawl does).")
@click.option("--url", "page_url", help="The URL a saved FILE was fetched from (default: its canonical link).")
@click.pass_context
def extract(ctx, page, method, page_url):
    """Print the fields read from one saved page or one URL, as JSON; the archive is not touched.

    The keys are the export's, plus `published` (the date as the page gives
    it, in its own offset), `method` (profile, or fallback and the extractor's
    version), `problem` (why the page could not be archived, or null) and
    `profile_miss` (what made the crawl's `auto` fall back). A page that could
    not be archived still shows every field read. Exits 1 only when the page
    could not be archived. Indented on a terminal; one line when piped (one
    JSON object per line, for scripts and scorers).
    """
    import json

    from ops.extract import PageUnavailable, extract_page, load

    settings = settings_from(ctx)
    try:
        raw, url, headers, status, fetched_at = load(page, settings, page_url)
    except PageUnavailable as exc:
        raise Problem(str(exc)) from None
    fields = extract_page(load_profile(settings.profile), raw, url, headers=headers, http_status=status,
                          fetched_at=fetched_at, method=method)
    click.echo(json.dumps(fields, ensure_ascii=False, indent=2 if sys.stdout.isatty() else None))
    sys.exit(1 if fields["problem"] else 0)


@main.command()
@click.option("--channel", help="Only this channel (slug or name).")
@click.option("--since", help="Articles published on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Articles published on or before this date (YYYY-MM-DD).")
@click.option("--article", help="Only this article (an aid or any URL of it).")
@click.option("--method", type=click.Choice(["auto", "profile", "fallback"]), default="auto", show_default=True,
              help="How to read the pages (auto: the profile, the fallback where it misses).")
@click.option("--no-quarantine", is_flag=True, help="Do not read quarantined pages again.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@db_option
@click.pass_context
def reparse(ctx, channel, since, until, article, method, no_quarantine, no_progress, db):
    """Read the stored pages again after a profile or cleaner fix; never fetches anything.

    Each live article's current page is read and cleaned again; a new version
    (change `reextracted`) is written only where the content changed.
    Quarantined pages that now read are archived. Exit 1 if the run failed.
    """
    from ops.reparse import ReparseRequest, run_reparse

    settings = settings_from(ctx, db=db)
    request = ReparseRequest(channel=channel, since=parse_day("--since", since), until=parse_day("--until", until),
                             article=article, method=method, quarantine=not no_quarantine)
    with problems():
        if channel:
            load_profile(settings.profile).channel(channel)
    check_database(settings.db, create=False)
    with problems(), progress_bar("page", "reparse", not no_progress) as progress:
        summary = run_reparse(settings, request, progress=progress)
    click.echo(f"reparse run {summary.run_id} {summary.status}: {summary.articles_read} articles read, "
               f"{summary.reextracted} reextracted, {summary.unchanged} unchanged, {summary.unreadable} unreadable; "
               f"{summary.quarantine_read} quarantined pages read again, {summary.recovered} archived"
               + (f"\n  error: {summary.error}" if summary.error else ""))
    for problem in summary.problems[:20]:
        click.echo(f"  {problem}")
    sys.exit(0 if summary.status == "succeeded" else 1)


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@db_option
@click.pass_context
def import_(ctx, files, no_progress, db):
    """Archive the portal's pages captured in WARC files (FILE.warc or FILE.warc.gz) by any tool.

    Each response (and identical-payload revisit) of a portal article URL is
    read as a crawl reads a page and archived at its capture time: the same
    page again is nothing new, an edit is a new version, a capture older than
    the archive's first version becomes earlier history. Other URLs and
    records are counted and skipped; broken records and unreadable pages are
    quarantined with their reason. Importing the same files again writes
    nothing. Exit 1 if the run failed.
    """
    from ops.warc_import import run_import

    settings = settings_from(ctx, db=db)
    check_database(settings.db, create=True)
    with problems(), progress_bar("capture", "import", not no_progress) as progress:
        summary = run_import(settings, list(files), progress=progress)
    click.echo(summary.line() + (f"\n  error: {summary.error}" if summary.error else ""))
    for problem in summary.problems[:20]:
        click.echo(f"  {problem}")
    if len(summary.problems) > 20:
        click.echo(f"  … and {len(summary.problems) - 20} more")
    sys.exit(0 if summary.status == "succeeded" else 1)


@main.command()
@db_option
@click.pass_context
def verify(ctx, db):
    """Check the archive's invariants; exit 1 if any is violated.

    One open version per article, gapless version numbers, unbroken validity
    chains, content hashes recomputed from the stored fields, intact raw
    pages, article rows that agree with their open version, duplicate links
    without cycles. Read-only: never migrates or repairs.
    """
    from pipeline.archive.db import redact_url
    from pipeline.archive.verify import verify_archive

    with archive_session(ctx, db, missing=lambda: "nothing to verify", upgrade=False) as (session, settings, _profile):
        click.echo(f"verifying {redact_url(settings.db)}")
        with problems():
            report = verify_archive(session, progress=_show_progress if sys.stderr.isatty() else None)
    click.echo("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


def _show_progress(done: int, total: int) -> None:
    click.echo(f"\r  {done}/{total} articles checked", err=True, nl=done >= total)
