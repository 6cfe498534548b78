"""The `portal-archive` command: thin commands over library functions."""
from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pipeline.config import ConfigError, Settings, load_settings, redact_url
from pipeline.db import ArchiveError
from spiders.profile import ProfileError, load_profile

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


@contextmanager
def problems():
    from pipeline.lease import LeaseHeld
    from pipeline.query import NotFound

    try:
        yield
    except (ConfigError, ArchiveError, ProfileError, NotFound) as exc:
        raise Problem(str(exc)) from None
    except LeaseHeld as exc:
        raise Busy(str(exc)) from None
    except SQLAlchemyError as exc:
        raise Problem(f"database error: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__


class MissingArchive(Problem):
    def __init__(self, path: Path):
        super().__init__(f"there is no archive at {path} (the file does not exist)")


def check_database(url: str, *, create: bool) -> None:
    """Refuse a database that cannot be used, before anything is written to it.

    SQLite creates a missing file on first connect (and pipeline.db.make_engine
    its directory), so a command that only reads looks first: an archive that
    does not exist is reported, never created empty. For a command that
    creates the archive, its directory is made here or clearly refused.
    """
    from pipeline.db import make_engine

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        masked = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)  # make_url could not find the password
        raise Problem(f"not a database URL: {masked!r}") from None
    shown = redact_url(url)
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        if path.is_dir():
            raise Problem(f"cannot open database {shown}: {path} is a directory")
        if not path.exists():
            if not create:
                raise MissingArchive(path)
            blocker = next((p for p in path.parents if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                raise Problem(f"cannot create database {shown}: {blocker} is a file, not a directory")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise Problem(f"cannot create database {shown}: its directory {path.parent} "
                              f"cannot be created ({exc.strerror or exc})") from None
            return  # the command itself creates the file
    try:
        engine = make_engine(url)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except ArchiveError as exc:
        raise Problem(str(exc)) from None
    except ImportError as exc:
        raise Problem(f"cannot open database {shown}: its driver is not installed ({exc})") from None
    except (SQLAlchemyError, OSError) as exc:
        reason = _first_line(exc)
        if parsed.password:
            reason = reason.replace(str(parsed.password), "***")
        raise Problem(f"cannot open database {shown}: {reason}") from None


class _OneLineUsage(click.Group):
    """Click's own usage errors (a bad option value, an unknown option) as one line, exit code 2."""

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


@main.command()
@click.option("--base-url", help="The portal's address (env PORTAL_ARCHIVE_BASE_URL).")
@click.option("--channel", "channels", multiple=True, help="Only this channel (slug or name); repeatable.")
@click.option("--revisit", type=click.Choice(["policy", "all", "none", "due"]), default="policy", show_default=True,
              help="Archived articles to fetch again (to see edits and takedowns): as many as the request "
                   "budget allows, those likeliest to have changed first (policy; `due` is its old name), "
                   "all of them, or none.")
@click.option("--incremental", is_flag=True,
              help="Stop paging a channel once a list page holds nothing new (plus one page of slack).")
@click.option("--no-conditional", is_flag=True, help="Revisit without If-None-Match / If-Modified-Since.")
@click.option("--no-gap-probes", is_flag=True, help="Do not probe aids missing between archived ones.")
@click.option("--distributed", is_flag=True,
              help="Seed a shared Redis frontier (PORTAL_ARCHIVE_REDIS) for `portal-archive worker`s and "
                   "wait until they have drained it.")
@db_option
@click.pass_context
def crawl(ctx, base_url, channels, revisit, incremental, no_conditional, no_gap_probes, distributed, db):
    """Crawl the portal once into the archive."""
    from pipeline.crawl import CrawlPlan, run_crawl
    from spiders.walk import ListWalk

    settings = settings_from(ctx, base_url=base_url, db=db)
    with problems():
        for channel in channels:
            load_profile(settings.profile).channel(channel)
        _check_crawl_target(settings)
        plan = CrawlPlan(channels=list(channels) or None, revisit="policy" if revisit == "due" else revisit,
                         walk=ListWalk(mode="incremental" if incremental else "full"),
                         conditional=not no_conditional, probe_gaps=not no_gap_probes)
        if distributed:
            from pipeline.distributed import coordinate

            summary = coordinate(settings, plan, echo=lambda line: click.echo(line, err=True))
        else:
            summary = run_crawl(settings, plan)
    click.echo(format_summary(summary))
    sys.exit(0 if summary.status in ("succeeded", "skipped") else 1)


def _check_crawl_target(settings: Settings) -> None:
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Problem(f"base URL {settings.base_url!r} is not an http(s) URL")
    check_database(settings.db, create=True)


def format_summary(s) -> str:
    if s.status == "skipped":
        return f"run {s.run_id} skipped: {s.error}"
    return (f"run {s.run_id} {s.status}: {s.pages_fetched} pages, {s.articles_seen} articles seen, "
            f"{s.articles_new} new, {s.versions_written} versions written, {s.unchanged} unchanged, "
            f"{s.taken_down} taken down, {s.restored} restored, {s.duplicates} duplicates linked, "
            f"{s.quarantined} quarantined, {s.fetch_failures} failed fetches"
            + (f", {s.gaps_found} of {s.gaps_probed} aid gaps found" if s.gaps_probed else "")
            + _budget_summary(s)
            + _health_summary(s.health)
            + (f"\n  error: {s.error}" if s.error else ""))


def _budget_summary(s) -> str:
    """The run's requests against its allowance, by what they were spent on, and what was left."""
    spent = s.budget.get("spent") or {}
    if not s.requests and not spent:
        return ""
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(spent.items(), key=lambda kv: -kv[1]))
    line = (f"\n  requests: {s.requests}" + (f" of {s.allowance} allowed" if s.allowance is not None else "")
            + (f" ({kinds})" if kinds else ""))
    left = {k: v for k, v in (s.budget.get("left") or {}).items() if v}
    plan = s.budget.get("revisit") or {}
    undone = []
    if left:
        undone.append("requests not sent: " + ", ".join(f"{kind} {n}" for kind, n in sorted(left.items())))
    if plan.get("left_for_budget"):
        undone.append(f"{plan['left_for_budget']} revisits not planned (expected new versions among them: "
                      f"{plan.get('left_expected_versions', 0):.2f})")
    if plan.get("floor_overdue_left"):
        undone.append(f"{plan['floor_overdue_left']} articles past the revisit floor not seen")
    if plan.get("probes_left_for_budget"):
        undone.append(f"{plan['probes_left_for_budget']} gap probes")
    if undone:
        line += "\n  left for lack of budget: " + "; ".join(undone)
    return line


def _health_summary(health: dict) -> str:
    """The run's fallback and quarantine rates when it read any article page, and why it is degraded."""
    if not health or not health.get("article_pages"):
        return ""
    return (f"\n  health: fallback {health['fallback_rate']:.1%}, quarantine {health['quarantine_rate']:.1%}"
            + "".join(f"\n  degraded: {reason}" for reason in health.get("degraded") or []))


def parse_range(option: str, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or int(parts[0]) > int(parts[1]):
        raise Problem(f"{option} {value!r} is not a range like 1-20 (low-high)")
    return int(parts[0]), int(parts[1])


def parse_day(option: str, value: str | None):
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise Problem(f"{option} {value!r} is not a date like 2025-05-07") from None


@main.command()
@click.option("--base-url", help="The portal's address (env PORTAL_ARCHIVE_BASE_URL).")
@click.option("--channel", "channels", multiple=True, help="Only this channel (slug or name); repeatable.")
@click.option("--since", help="Articles listed on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Articles listed on or before this date (YYYY-MM-DD).")
@click.option("--pages", help="Only list pages A-B of each channel (page 1 is the newest).")
@click.option("--aids", help="Fetch articles A-B by aid directly, without list pages.")
@click.option("--restart", is_flag=True, help="Start this backfill over instead of resuming it.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--distributed", is_flag=True, help="Seed a shared Redis frontier for workers instead of crawling here.")
@db_option
@click.pass_context
def backfill(ctx, base_url, channels, since, until, pages, aids, restart, no_progress, distributed, db):
    """Walk the portal's history into the archive; resumable: run it again to continue."""
    from pipeline.backfill import BackfillRequest, run_backfill

    settings = settings_from(ctx, base_url=base_url, db=db)
    request = BackfillRequest(channels=tuple(channels), since=parse_day("--since", since),
                              until=parse_day("--until", until), pages=parse_range("--pages", pages),
                              aids=parse_range("--aids", aids))
    if request.aids and (request.pages or request.since or request.until):
        raise Problem("--aids fetches by id and cannot be combined with --pages/--since/--until")
    with problems():
        for channel in channels:
            load_profile(settings.profile).channel(channel)
        _check_crawl_target(settings)
        summary, backfill_id = run_backfill(settings, request, progress=not no_progress, restart=restart,
                                            distributed=distributed,
                                            announce=lambda: click.echo(backfill_pace(settings), err=True))
    if summary is None:
        click.echo(f"backfill {backfill_id} with these options is already done (use --restart to redo it)")
        return
    click.echo(f"backfill {backfill_id}: " + format_summary(summary))
    left = sum((summary.budget.get("left") or {}).values())
    if summary.status == "skipped" or left:
        click.echo(f"backfill {backfill_id} is not finished: the request budget ran out"
                   + (f" with {left} requests unsent" if left else "")
                   + "; run the same command again once the budget allows (it resumes where it stopped)")
    sys.exit(0 if summary.status in ("succeeded", "skipped") else 1)


def backfill_pace(settings: Settings) -> str:
    """How fast a backfill can go under the settings, and so how long a portal's history takes."""
    from pipeline.budget import duration, pace

    rate = pace(settings.download_delay, settings.requests_per_day)
    per_day = f"{settings.requests_per_day:,} requests a day" if settings.requests_per_day else "no daily budget"
    lines = [f"pace: {settings.concurrent_requests} request(s) at a time, "
             f"{settings.download_delay:g} s apart{' (AutoThrottle)' if settings.autothrottle else ''}; "
             f"{per_day}"]
    if rate is not None:
        lines.append(f"  at this pace 10,000 pages take {duration(10_000, rate)}, "
                     f"100,000 pages {duration(100_000, rate)}; the progress line's ETA counts the same way")
    return "\n".join(lines)


@main.command()
@click.option("--idle", "idle_seconds", type=float,
              help="Leave after this many seconds with nothing to do (default: worker_idle_seconds, 30).")
@db_option
@click.pass_context
def worker(ctx, idle_seconds, db):
    """Join the current distributed crawl (PORTAL_ARCHIVE_REDIS) and work until it is drained."""
    from pipeline.distributed import run_worker

    settings = settings_from(ctx, db=db, worker_idle_seconds=idle_seconds)
    with problems():
        result = run_worker(settings)
    if result["joined"] is None:
        click.echo(f"no distributed run to join after {settings.worker_idle_seconds:.0f} s")
        return
    totals = result["stats"]
    click.echo(f"worker {result['worker']} left run {result['joined']}: "
               f"{totals.get('downloader/response_count', 0)} pages, {totals.get('archive/new', 0)} new articles")


@main.command()
@click.option("--print-schedule", is_flag=True, help="Print the next run times of each job and exit.")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line instead of text.")
@db_option
@click.pass_context
def daemon(ctx, print_schedule, log_json, db):
    """Keep the archive current on the schedule of the settings file's [daemon] section."""
    from pipeline.daemon import Daemon
    from pipeline.schedule import load_schedule

    settings = settings_from(ctx, db=db)
    with problems():
        schedule = load_schedule(settings)
    if print_schedule:
        now = datetime.now(schedule.tz)
        for name, times in schedule.next_runs(5, now).items():
            click.echo(f"{name}: " + ", ".join(f"{t:%Y-%m-%d %H:%M:%S %Z}" for t in times))
        return
    check_database(settings.db, create=True)
    setup_logging(settings.log_level, log_json)
    with problems():
        Daemon(settings, schedule).run()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@db_option
@click.pass_context
def status(ctx, as_json, db):
    """Last and next runs, archive totals, lease holder, recent failures; exit 1 if a job's last run failed."""
    import json

    from pipeline.status import archive_status, format_status, healthy

    with _session(ctx, db, missing="no archive yet") as (session, settings, _profile):
        report = archive_status(session, session.get_bind(), settings)
    if as_json:
        click.echo(json.dumps(report, default=str, ensure_ascii=False, indent=2))
    else:
        click.echo(format_status(report))
    sys.exit(0 if healthy(report) else 1)


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
    check_database(settings.db, create=True)
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

    with _session(ctx, db, missing=lambda: _article_missing(ctx, article)) as (session, settings, profile):
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
    from pipeline.diffing import version_diff
    from pipeline.query import find_article, version_of

    with _session(ctx, db, missing=lambda: _article_missing(ctx, article)) as (session, settings, profile):
        with problems():
            found = find_article(session, profile, article, base_url=settings.base_url)
            to = found.current_version if to is None else to
            from_ = max(1, to - 1) if from_ is None else from_
            new = version_of(session, found, to)  # first: --from may only be its default
            old = version_of(session, found, from_)
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
    with _session(ctx, db, missing=lambda: "nothing to export") as (session, _settings, profile):
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
            writer(rows, click.get_text_stream("stdout"))


@main.command()
@click.argument("page", metavar="FILE|URL")
@click.option("--method", type=click.Choice(["auto", "profile", "fallback"]), default="auto", show_default=True,
              help="How to read the page: the profile, the generic fallback, or the profile and the fallback "
                   "when the profile finds no title, body or date (what a crawl does).")
@click.option("--url", "page_url", help="The URL a saved FILE was fetched from (default: its canonical link).")
@click.pass_context
def extract(ctx, page, method, page_url):
    """Print the fields read from one saved page or one URL, as JSON; the archive is not touched.

    The keys are the export's, plus `method` (profile, or fallback and the
    extractor's version), `problem` (why the page could not be archived, or
    null) and `profile_miss` (what made the crawl's `auto` fall back). Exits 1
    when the page could not be archived.
    """
    import json

    from pipeline.extract_page import PageUnavailable, extract_page, load

    settings = settings_from(ctx)
    try:
        raw, url, headers, status, fetched_at = load(page, settings, page_url)
    except PageUnavailable as exc:
        raise Problem(str(exc)) from None
    fields = extract_page(load_profile(settings.profile), raw, url, headers=headers, http_status=status,
                          fetched_at=fetched_at, method=method)
    click.echo(json.dumps(fields, ensure_ascii=False, indent=2))
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
    from pipeline.reparse import ReparseRequest, run_reparse

    settings = settings_from(ctx, db=db)
    request = ReparseRequest(channel=channel, since=parse_day("--since", since), until=parse_day("--until", until),
                             article=article, method=method, quarantine=not no_quarantine)
    with problems():
        if channel:
            load_profile(settings.profile).channel(channel)
    check_database(settings.db, create=False)
    bar = None
    if not no_progress:
        from tqdm import tqdm

        bar = tqdm(unit="page", file=sys.stderr, dynamic_ncols=True, desc="reparse")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    with problems():
        try:
            summary = run_reparse(settings, request, progress=progress if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
    click.echo(f"reparse run {summary.run_id} {summary.status}: {summary.articles_read} articles read, "
               f"{summary.reextracted} reextracted, {summary.unchanged} unchanged, {summary.unreadable} unreadable; "
               f"{summary.quarantine_read} quarantined pages read again, {summary.recovered} archived"
               + (f"\n  error: {summary.error}" if summary.error else ""))
    for problem in summary.problems[:20]:
        click.echo(f"  {problem}")
    sys.exit(0 if summary.status == "succeeded" else 1)


def _article_missing(ctx, ref: str) -> str:
    """What history and diff say when there is no archive at all: ARTICLE itself is checked first."""
    from pipeline.query import article_aid

    settings = settings_from(ctx)
    with problems():
        aid = article_aid(load_profile(settings.profile), ref, base_url=settings.base_url)
    return f"article {aid} is not in the archive"


@contextmanager
def _session(ctx, db, *, missing, upgrade: bool = True):
    """A session on an existing archive; `missing` (text, or a function) says what its absence means."""
    from pipeline.db import open_archive, session_scope

    settings = settings_from(ctx, db=db)
    try:
        check_database(settings.db, create=False)
    except MissingArchive as exc:
        raise Problem(f"{missing() if callable(missing) else missing}: {exc.format_message()}") from None
    with problems():
        engine = open_archive(settings.db, auto_upgrade=upgrade and settings.is_default_db)
    try:
        with session_scope(engine) as session:
            yield session, settings, load_profile(settings.profile)
    finally:
        engine.dispose()


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
    from pipeline.verify import verify_archive

    with _session(ctx, db, missing=lambda: "nothing to verify", upgrade=False) as (session, settings, _profile):
        click.echo(f"verifying {redact_url(settings.db)}")
        with problems():
            report = verify_archive(session, progress=_show_progress if sys.stderr.isatty() else None)
    click.echo("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


def _show_progress(done: int, total: int) -> None:
    click.echo(f"\r  {done}/{total} articles checked", err=True, nl=done >= total)


@main.command()
@click.option("--articles", default=400, show_default=True, help="Size of the replica to crawl.")
@click.option("--seed", default=1, show_default=True, help="Seed of the replica and its changes.")
@click.option("--db", default="sqlite:///var/demo.sqlite", show_default=True,
              help="Database for the demo (emptied first when it is a SQLite file).")
def demo(articles, seed, db):
    """Replica → crawl → a round of portal changes → crawl again → what the archive holds."""
    from pipeline.demo import run_demo

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


def _attach_replica():
    from replica.cli import cli as replica

    main.add_command(replica, name="replica")


_attach_replica()

if __name__ == "__main__":
    main()
