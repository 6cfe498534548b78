"""One crawl of the portal: take the lease, open a run, let Scrapy fetch and the stages
archive, close the run with its counts, give the lease back."""
from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from ops.config import Settings
from ops.lease import Heartbeat, acquire, holder_id, mark_abandoned, release, this_process
from ops.reserve import DiskReserve
from pipeline import stats as keys
from pipeline.archive import budget, health, rawpages, revisit, runs
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.models import BackfillArticle, CrawlRun
from pipeline.archive.queries import ArchivedAids
from pipeline.archive.runs import RunSummary
from pipeline.reading.compression import Dictionary
from pipeline.reading.profile import load_profile
from spiders.portal import PortalSpider
from spiders.run import default_components_used, run_spider
from spiders.walk import ListWalk

FINISH_STATUS = {"finished": "succeeded", "shutdown": "interrupted"}
log = logging.getLogger(__name__)


@dataclass
class CrawlPlan:
    """What one run fetches. The defaults are a manual `portal-archive crawl`."""

    kind: str = "crawl"  # crawl, backfill
    job: str | None = None  # the daemon job that runs it
    channels: list[str] | None = None  # slugs or names
    walk: ListWalk = field(default_factory=ListWalk)
    revisit: str = "policy"  # policy (the budget's worth, best first), all, none
    conditional: bool = True  # send If-None-Match / If-Modified-Since on revisits
    probe_gaps: bool = True  # fetch aids missing between archived ones
    probe_aids: list[int] = field(default_factory=list)  # explicit aids (backfill --aids)
    follow_links: bool = True  # related and prev/next links
    backfill_id: int | None = None
    progress: bool = False
    # A scheduled job's period: its run takes that share of the day's request budget.
    period: timedelta | None = None

    def options(self) -> dict:
        walk = self.walk
        return {"channels": self.channels or [], "walk": walk.mode, "since": str(walk.since or ""),
                "until": str(walk.until or ""), "pages": list(walk.pages or ()), "revisit": self.revisit,
                "conditional": self.conditional, "probe_gaps": self.probe_gaps,
                "aids": [min(self.probe_aids), max(self.probe_aids)] if self.probe_aids else []}


def scrapy_settings(settings: Settings, run_id: int, plan: CrawlPlan, allowance: int | None = None,
                    train_after: int = 0) -> dict:
    """The crawl's Scrapy settings. `train_after`: for a crawl of an archive without a raw-page
    dictionary, the article pages after which its writer trains the first (0: not during the crawl)."""
    return {
        "BOT_NAME": "portal-archive",
        "USER_AGENT": settings.effective_user_agent,
        "ROBOTSTXT_OBEY": settings.obey_robots,
        "CONCURRENT_REQUESTS": settings.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.concurrent_requests,
        "DOWNLOAD_DELAY": settings.download_delay,
        "AUTOTHROTTLE_ENABLED": settings.autothrottle,
        # Never more than the budget allows (spiders.middlewares.RequestBudget); -1: count only.
        "PORTAL_ARCHIVE_REQUEST_ALLOWANCE": -1 if allowance is None else allowance,
        "DOWNLOAD_TIMEOUT": settings.download_timeout,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": settings.retry_times,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        # Scrapy's default components less those this crawl does not use (spiders/run.py).
        **default_components_used(),
        "DOWNLOADER_MIDDLEWARES": {"spiders.middlewares.RobotsTxt": 100,
                                   "spiders.middlewares.RetryBackoff": 560,
                                   # Before DownloaderStats (850): a refused request is no request.
                                   "spiders.middlewares.RequestBudget": 845},
        # Scrapy starts up to CONCURRENT_ITEMS tasks for every callback's output; the stages
        # are synchronous, so the tasks only cost (≈1 ms of CPU per page, bench --profile).
        "CONCURRENT_ITEMS": 1,
        # Responses whose items wait for the archive writer stay in Scrapy's scraper until
        # written; 5 MB of them (Scrapy's default) plus their items piled up behind a writer
        # slowed by a large archive (bench: +30 MiB at 20,000 articles). 1 MB still keeps
        # the writer's queue full.
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": 1_000_000,
        # One site: the downloader-aware queue's per-slot bookkeeping buys nothing.
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue",
        "RETRY_BACKOFF_BASE": settings.retry_backoff,
        "COOKIES_ENABLED": False,
        # A page this large is refused (recorded as a failed fetch with the reason) rather
        # than parsed; the portal's largest real pages are a few MB.
        "DOWNLOAD_MAXSIZE": settings.max_page_bytes,
        "DOWNLOAD_WARNSIZE": settings.max_page_bytes // 2,
        # No control surface on the network: off twice, left out of the extensions above and
        # disabled should a later Scrapy rename them.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS": {"spiders.progress.Progress": 500} if plan.progress else {},
        "LOG_LEVEL": settings.log_level,
        # Pages arrive read, cleaned and fingerprinted (spiders/reader.py): one stage archives them.
        "ITEM_PIPELINES": {"spiders.stages.ArchiveStage": 300},
        "PORTAL_ARCHIVE_PROFILE": settings.profile,
        "PORTAL_ARCHIVE_DB": settings.db,
        "PORTAL_ARCHIVE_RUN_ID": run_id,
        "PORTAL_ARCHIVE_BATCH_SIZE": settings.batch_size,
        "PORTAL_ARCHIVE_TAKEDOWN_CONFIRMATIONS": settings.takedown_confirmations,
        "PORTAL_ARCHIVE_BACKFILL_ID": plan.backfill_id or 0,
        "PORTAL_ARCHIVE_PROGRESS": plan.progress,
        "PORTAL_ARCHIVE_SQLITE_BUSY_TIMEOUT_MS": settings.sqlite_busy_timeout_ms,
        "PORTAL_ARCHIVE_WRITE_PROCESS": settings.writes_in_helper(),
        "PORTAL_ARCHIVE_TRAIN_AFTER_PAGES": train_after,
    }


def aids_in(engine: Engine, query_for):
    """A predicate over a list page's aids, answered by one short query per page."""
    def check(aids: list[int]) -> set[int]:
        with session_scope(engine) as session:
            return set(session.scalars(query_for(aids)))
    return check


def archived_aids(engine: Engine) -> ArchivedAids:
    with session_scope(engine) as session:
        return ArchivedAids(session)


def run_crawl(settings: Settings, plan: CrawlPlan | None = None, *, run_id: int | None = None,
              lease_held: bool = False) -> RunSummary:
    """Crawl the portal once into the archive. Runs the Twisted reactor: once per process.

    `run_id` and `lease_held` are for a parent (the daemon) that opened the run
    and holds the lease itself while this runs in its child process.
    """
    plan = plan or CrawlPlan()
    profile = load_profile(settings.profile)
    channel_names = [profile.channel(c).name for c in plan.channels] if plan.channels else None
    engine = open_archive(settings.db, auto_upgrade=settings.is_default_db,
                          busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    holder = holder_id()
    ttl = timedelta(seconds=settings.lease_ttl_seconds)
    if not lease_held:
        acquire(engine, holder, plan.job or plan.kind, ttl)
    try:
        mark_abandoned(engine, stale_after=ttl * 3)
        if run_id is None:
            run_id = runs.start_run(engine, plan.kind, settings.base_url, plan.options(), job=plan.job,
                                    backfill_id=plan.backfill_id, owner=this_process())
        else:  # opened by the daemon, which answered for it until now
            runs.claim_run(engine, run_id, *this_process())
        reserve = DiskReserve(settings.db).take()
        try:
            with Heartbeat(engine, holder, ttl, run_id=run_id) if not lease_held else nullcontext():
                summary = _crawl(settings, plan, engine, run_id, channel_names, profile, reserve)
        finally:
            reserve.release()
    finally:
        if not lease_held:
            release(engine, holder)
        engine.dispose()
    return summary


def current_dictionary(engine: Engine) -> Dictionary | None:
    """The dictionary the crawl's readers compress pages with: the archive's newest."""
    with session_scope(engine) as session:
        return rawpages.current(session)


def maintain_dictionaries(engine: Engine, settings: Settings) -> str | None:
    """After a run: train the archive's first raw-page dictionary, or a new one when the portal's
    template changed (pipeline/archive/rawpages.py); what it did, or None. A failure here costs
    compression only, never the run: it is logged and tried again after the next run."""
    try:
        with session_scope(engine) as session:
            said = rawpages.maintain(session, after_pages=settings.dictionary_after_pages,
                                     window=settings.dictionary_window)
    except Exception:
        log.exception("raw-page dictionary maintenance failed")
        return None
    if said:
        log.info("raw pages: %s", said)
    return said


def run_allowance(engine: Engine, settings: Settings, run_id: int, now: datetime,
                  period: timedelta | None) -> int | None:
    """What the request budget allows this run (pipeline/budget.py), recorded on the run at once:
    a run that dies before it can count is charged all of it."""
    with session_scope(engine) as session:
        allowed = budget.allowance(session, budget.Budget(settings.requests_per_day, settings.requests_per_run),
                                   now, period)
        session.get(CrawlRun, run_id).allowance = allowed
    return allowed


def plan_run(engine: Engine, settings: Settings, plan: CrawlPlan, now: datetime, allowance: int | None,
             channel_names: list[str] | None):
    """The run's article requests beside its list walk: failed fetches, revisits, gap probes."""
    return revisit.plan_visits(
        engine, plan.revisit, now, allowance, channels=channel_names, conditional=plan.conditional,
        probe_gaps=plan.probe_gaps, retry_failures=plan.kind == "crawl",
        floor=timedelta(days=settings.revisit_floor_days) if settings.revisit_floor_days else None,
        strategy=settings.revisit_strategy)


def _crawl(settings, plan, engine, run_id, channel_names, profile, reserve: DiskReserve) -> RunSummary:
    now = datetime.now(timezone.utc)
    allowance = run_allowance(engine, settings, run_id, now, plan.period)
    if allowance == 0:
        with session_scope(engine) as session:
            spent = budget.spent(session, now - budget.DAY, now)
        reason = (f"request budget spent: {spent} requests in the last 24 hours of {settings.requests_per_day} "
                  f"a day (requests_per_day)")
        run = runs.finish_run_patiently(engine, run_id, "skipped", {keys.BUDGET_ALLOWANCE: 0}, reason)
        return RunSummary.of(run)
    visits = plan_run(engine, settings, plan, now, allowance, channel_names)
    probes = list(plan.probe_aids)
    skip = None
    if plan.backfill_id:
        skip = aids_in(engine, lambda aids: select(BackfillArticle.aid).where(
            BackfillArticle.backfill_id == plan.backfill_id, BackfillArticle.aid.in_(aids)))
        probes = [a for a in probes if not skip([a])] if len(probes) < 5000 else probes
    known = archived_aids(engine)
    dictionary = current_dictionary(engine)
    crawled = run_spider(
        scrapy_settings(settings, run_id, plan, allowance,
                        train_after=settings.dictionary_after_pages if dictionary is None else 0),
        PortalSpider, settings.reader_processes(),
        base_url=settings.base_url, profile=settings.profile,
        channels=[profile.channel(c).slug for c in plan.channels] if plan.channels else None,
        walk=plan.walk, revisit=visits.visits, retry_lists=visits.failed_lists,
        probe_aids=probes, known_aids=known, skip_aids=skip, follow_links=plan.follow_links,
        fallback=settings.extraction_fallback, hold_revisits=allowance is not None, dictionary=dictionary)
    stats, error, listed_new = crawled.stats, crawled.error, crawled.listed_new
    stats.update(visits.stats)
    stats[keys.GAPS_PROBED] = keys.count(stats, keys.SPENT + "probe")
    stats[keys.RETRY_FAILED_LISTS] = len(visits.failed_lists)
    if allowance is not None:
        stats[keys.BUDGET_ALLOWANCE] = allowance
    reason = stats.get(keys.FINISH_REASON)
    error = error or stats.get(keys.ARCHIVE_ERROR) or keys.callbacks_raised(stats)
    failed = keys.count(stats, keys.FETCH_FAILED)
    if (not error and reason == "finished" and not keys.answered(stats) and not keys.total(stats, keys.LEFT)
            and (failed or not keys.count(stats, keys.LIST_PAGES))):
        # Every request failed: a run that could not see the portal did not succeed.
        error = f"no page could be fetched from {settings.base_url} ({failed} failed fetches)"
    status = "failed" if error else FINISH_STATUS.get(reason, "failed")
    if status == "failed" and not error:
        error = f"crawl ended with reason {reason!r}"
    stats[keys.LISTED_NEW] = len(listed_new)
    try:
        broken = health.known_broken(engine, run_id)
    except OperationalError:  # the database is away (often why the crawl stopped): judge without it
        broken = 0
    figures = health.run_health(stats, len(listed_new), broken)
    report = health.assess(figures, health.Thresholds.from_settings(settings))
    if status == "succeeded":
        error = health.unarchived_news(engine, run_id, listed_new, stats)
        status = "failed" if error else health.DEGRADED if report["degraded"] else status
    reserve.release()  # the room to close the run in, should the crawl have filled the disk
    run = runs.finish_run_patiently(engine, run_id, status, stats, error, health=report)
    if status != "failed":
        maintain_dictionaries(engine, settings)
    return RunSummary.of(run)
