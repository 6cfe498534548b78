"""Commands that crawl, or keep crawling: crawl, backfill, worker, daemon, status."""
from __future__ import annotations

import sys
from datetime import datetime
from urllib.parse import urlsplit

import click

from ops.cli import (
    Problem,
    archive_session,
    check_database,
    db_option,
    main,
    problems,
    settings_from,
    setup_logging,
)
from ops.config import Settings
from pipeline.reading.profile import load_profile


@main.command()
@click.option("--base-url", help="The portal's address (env PORTAL_ARCHIVE_BASE_URL).")
@click.option("--channel", "channels", multiple=True, help="Only this channel (slug or name); repeatable.")
@click.option("--revisit", type=click.Choice(["policy", "all", "none", "due"]), default="policy", show_default=True,
              help="Archived articles to fetch again (to see edits and takedowns): as many as the request "
                   "budget allows, those likeliest to have changed first (policy; `due` is its old name), "
                   "all of them, or none.")
@click.option("--incremental", is_flag=True,
              help="Stop paging a channel once a list page holds nothing new (plus one page of slack).")
@click.option("--no-conditional", is_flag=True, help="Visit without If-None-Match / If-Modified-Since.")
@click.option("--no-gap-probes", is_flag=True, help="Do not probe aids missing between archived ones.")
@click.option("--distributed", is_flag=True,
              help="Seed a shared Redis frontier (PORTAL_ARCHIVE_REDIS) for `portal-archive worker`s and "
                   "wait until they have drained it.")
@db_option
@click.pass_context
def crawl(ctx, base_url, channels, revisit, incremental, no_conditional, no_gap_probes, distributed, db):
    """Crawl the portal once into the archive."""
    from ops.crawl import CrawlPlan, run_crawl
    from spiders.walk import ListWalk

    settings = settings_from(ctx, base_url=base_url, db=db)
    with problems():
        for channel in channels:
            load_profile(settings.profile).channel(channel)
        _check_crawl_target(settings, database=distributed)
        plan = CrawlPlan(channels=list(channels) or None, revisit="policy" if revisit == "due" else revisit,
                         walk=ListWalk(mode="incremental" if incremental else "full"),
                         conditional=not no_conditional, probe_gaps=not no_gap_probes)
        if distributed:
            from ops.distributed import coordinate

            summary = coordinate(settings, plan, echo=lambda line: click.echo(line, err=True))
        else:
            summary = run_crawl(settings, plan)
    click.echo(format_summary(summary))
    sys.exit(0 if summary.status in ("succeeded", "skipped") else 1)


def _check_crawl_target(settings: Settings, database: bool = True) -> None:
    """The base URL, and the database unless the run's opening checks it (ops/crawl_archive.py,
    in the archive writer process while the crawl's imports Scrapy)."""
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Problem(f"base URL {settings.base_url!r} is not an http(s) URL")
    if database:
        check_database(settings.db, create=True)


def format_summary(s) -> str:
    if s.status == "skipped":
        return f"run {s.id} skipped: {s.error}"
    return (f"run {s.id} {s.status}: {s.pages_fetched} pages, {s.articles_seen} articles seen, "
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
    from ops.backfill import BackfillRequest, run_backfill

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
    from pipeline.archive.budget import duration, pace

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
    from ops.distributed import run_worker

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
    from ops.daemon import Daemon
    from ops.schedule import load_schedule

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

    from ops.status import archive_status, format_status, healthy

    with archive_session(ctx, db, missing="no archive yet") as (session, settings, _profile):
        report = archive_status(session, session.get_bind(), settings)
    if as_json:
        click.echo(json.dumps(report, default=str, ensure_ascii=False, indent=2))
    else:
        click.echo(format_status(report))
    sys.exit(0 if healthy(report) else 1)
