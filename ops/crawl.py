"""One crawl of the portal: the archive opens the run (lease, run, budget, plan), Scrapy fetches
and the stage archives, the archive closes the run with its counts and gives the lease back.

What the run asks of the archive is ops/crawl_archive.py. With an archive writer process it is
asked there, by name, as soon as the writer is started: the archive's start (SQLAlchemy's and
Alembic's imports, the migrations of a new archive, the plan's queries) overlaps this process's
import of Scrapy, which is why Scrapy is imported inside `run_crawl`, and this process never
imports SQLAlchemy: about a quarter of a second of every `portal-archive crawl` on the faster
build machine, a second on a slow one (README, "The start-up, beside Scrapy's"). Without a
writer process the same calls run here.
"""
from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from datetime import timedelta

from ops.config import Settings
from pipeline.archive.summary import RunSummary
from pipeline.reading.compression import Dictionary
from pipeline.reading.profile import load_profile
from pipeline.reading.records import Visit
from spiders.helpers import HelperDied, HelperProcess, resolve
from spiders.walk import ListWalk, SortedAids

ARCHIVE_SIDE = "ops.crawl_archive"


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
    from spiders.run import default_components_used  # Scrapy: imported by the crawl only

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


@dataclass
class Opened:
    """What the archive gave a run before its first request (ops.crawl_archive.open_run)."""

    run_id: int
    holder: str | None  # the lease's holder; None: the caller (the daemon) holds it
    allowance: int | None = None
    visits: list[Visit] = field(default_factory=list)
    failed_lists: list[str] = field(default_factory=list)
    visit_stats: dict = field(default_factory=dict)
    probes: list[int] = field(default_factory=list)
    known_aids: array = field(default_factory=lambda: array("q"))  # sorted
    skip_aids: array | None = None  # a backfill's aids archived by its earlier runs, sorted
    dictionary: Dictionary | None = None
    skipped: RunSummary | None = None  # the budget was spent: the run is closed already


@dataclass
class Refused:
    """The archive would not open the run: unusable, or (`busy`) another crawl holds its lease."""

    message: str
    busy: bool = False


class RunRefused(Exception):
    """Refused, raised in the crawl's process (ops/cli's `problems` says it in one line)."""

    def __init__(self, refused: Refused):
        super().__init__(refused.message)
        self.busy = refused.busy


class ArchiveSideFailed(RuntimeError):
    """A call to the archive's side raised in the writer process: its type and message."""


class _ArchiveSide:
    """ops/crawl_archive.py's calls: in the archive writer process while it lives, else here."""

    def __init__(self, writer: HelperProcess | None):
        self.writer = writer

    def send(self, name: str, *args) -> None:
        """Ask the writer now; `answer` waits. Without a writer, `answer` makes the call."""
        writer = self.writer
        if writer is None or writer.dead:
            return
        if writer.pending:  # the crawl stopped with writes in flight: their answers would come first
            writer.close()
            return
        writer.detach()
        try:
            writer.send_now(f"{ARCHIVE_SIDE}:{name}", *args)
        except HelperDied:
            pass

    def answer(self, name: str, *args, may_fall_back: bool = True):
        """What `name(*args)` returned. Where the writer died, this process makes the call if
        `may_fall_back` (a run must be closed however its crawl ended), else it fails."""
        writer = self.writer
        if writer is not None:
            try:
                if writer.dead:
                    raise HelperDied()
                status, value = writer.answer_now()
            except HelperDied:
                if not may_fall_back:
                    raise ArchiveSideFailed(f"the archive writer process died during {name} "
                                            f"(exit code {writer.process.poll()})") from None
            else:
                if status == "error":
                    raise ArchiveSideFailed(f"{name} in the archive writer process: {value}")
                return value
        return resolve(f"{ARCHIVE_SIDE}:{name}")(*args)

    def call(self, name: str, *args):
        self.send(name, *args)
        return self.answer(name, *args)


def run_crawl(settings: Settings, plan: CrawlPlan | None = None, *, run_id: int | None = None,
              lease_held: bool = False) -> RunSummary:
    """Crawl the portal once into the archive. Runs the Twisted reactor: once per process.

    `run_id` and `lease_held` are for a parent (the daemon) that opened the run
    and holds the lease itself while this runs in its child process.
    """
    plan = plan or CrawlPlan()
    profile = load_profile(settings.profile)
    writer = HelperProcess("archive-writer") if settings.writes_in_helper() else None
    archive = _ArchiveSide(writer)
    try:
        opening = (settings, plan, os.getpid(), run_id, lease_held)
        archive.send("open_run", *opening)
        # Imported while the writer opens the run (the module's docstring).
        from spiders.portal import PortalSpider
        from spiders.reader import PageReader
        from spiders.run import run_spider

        # The readers start now too: their imports overlap the run's opening, not the first pages.
        reader = PageReader(settings.reader_processes())
        try:
            opened = archive.answer("open_run", *opening, may_fall_back=False)
            if isinstance(opened, Refused):
                raise RunRefused(opened)
            if opened.skipped is not None:
                return opened.skipped
            if opened.dictionary is not None:
                reader.use(opened.dictionary)
            try:
                crawled = run_spider(
                    scrapy_settings(settings, opened.run_id, plan, opened.allowance,
                                    train_after=settings.dictionary_after_pages if opened.dictionary is None else 0),
                    PortalSpider, reader,
                    base_url=settings.base_url, profile=settings.profile,
                    channels=[profile.channel(c).slug for c in plan.channels] if plan.channels else None,
                    walk=plan.walk, revisit=opened.visits, retry_lists=opened.failed_lists,
                    probe_aids=opened.probes, known_aids=SortedAids(opened.known_aids),
                    skip_aids=SortedAids(opened.skip_aids) if opened.skip_aids is not None else None,
                    follow_links=plan.follow_links, fallback=settings.extraction_fallback,
                    hold_revisits=opened.allowance is not None, archive_writer=writer)
            except BaseException:
                archive.call("close_run", settings, opened.holder)
                raise
        finally:
            reader.close()  # run_spider closed it already, unless the run never started
        return archive.call("finish_run", settings, opened, crawled.stats, crawled.error, crawled.listed_new)
    finally:
        if writer is not None:
            writer.close()
