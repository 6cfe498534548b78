"""One crawl of the portal: open a run, let Scrapy fetch, let the stages archive, close the run."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from scrapy.crawler import CrawlerProcess
from sqlalchemy import select
from sqlalchemy.engine import Engine

from pipeline import runs
from pipeline.config import Settings
from pipeline.db import open_archive, session_scope
from pipeline.models import Article, CrawlRun
from spiders.portal import PortalSpider
from spiders.profile import load_profile

REVISIT_CHUNK = 500
FINISH_STATUS = {"finished": "succeeded", "shutdown": "interrupted"}


@dataclass
class CrawlSummary:
    run_id: int
    status: str
    pages_fetched: int
    articles_seen: int
    articles_new: int
    versions_written: int
    unchanged: int
    taken_down: int
    restored: int
    duplicates: int
    quarantined: int
    fetch_failures: int
    error: str | None

    @classmethod
    def of(cls, run: CrawlRun) -> "CrawlSummary":
        return cls(**{f: getattr(run, f if f != "run_id" else "id") for f in cls.__dataclass_fields__})


def scrapy_settings(settings: Settings, run_id: int) -> dict:
    return {
        "BOT_NAME": "portal-archive",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": settings.obey_robots,
        "CONCURRENT_REQUESTS": settings.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.concurrent_requests,
        "DOWNLOAD_DELAY": settings.download_delay,
        "DOWNLOAD_TIMEOUT": settings.download_timeout,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": settings.retry_times,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "COOKIES_ENABLED": False,
        # No control surface on the network: the telnet console and the remote
        # control HTTP server that Scrapy 2.19 starts by default are off, explicitly.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS": {
            "scrapy.extensions.telnet.TelnetConsole": None,
            "scrapy.extensions.remote_control.RemoteControl": None,
            "scrapy.extensions.memdebug.MemoryDebugger": None,
        },
        "LOG_LEVEL": settings.log_level,
        "ITEM_PIPELINES": {
            "pipeline.clean.CleanStage": 100,
            "pipeline.dedupe.DedupeStage": 200,
            "pipeline.archive.ArchiveStage": 300,
        },
        "PORTAL_ARCHIVE_PROFILE": settings.profile,
        "PORTAL_ARCHIVE_DB": settings.db,
        "PORTAL_ARCHIVE_RUN_ID": run_id,
        "PORTAL_ARCHIVE_BATCH_SIZE": settings.batch_size,
        "PORTAL_ARCHIVE_TAKEDOWN_CONFIRMATIONS": settings.takedown_confirmations,
    }


def known_article_urls(engine: Engine, channels: list[str] | None) -> Iterator[str]:
    """Every archived article's canonical URL, read in short chunks while the crawl writes."""
    last_id = 0
    while True:
        with session_scope(engine) as session:
            query = select(Article.id, Article.canonical_url).where(Article.id > last_id)
            if channels:
                query = query.where(Article.channel.in_(channels))
            rows = session.execute(query.order_by(Article.id).limit(REVISIT_CHUNK)).all()
        if not rows:
            return
        last_id = rows[-1].id
        yield from (row.canonical_url for row in rows)


def run_crawl(settings: Settings, channels: list[str] | None = None, revisit: str = "all",
              kind: str = "crawl") -> CrawlSummary:
    """Crawl the portal once into the archive. Runs the Twisted reactor: once per process."""
    profile = load_profile(settings.profile)
    channel_names = [profile.channel(c).name for c in channels] if channels else None
    engine = open_archive(settings.db, auto_upgrade=settings.is_default_db)
    options = {"channels": channels or [], "revisit": revisit}
    run_id = runs.start_run(engine, kind, settings.base_url, options)
    process = CrawlerProcess(scrapy_settings(settings, run_id))
    crawler = process.create_crawler(PortalSpider)
    revisit_urls = known_article_urls(engine, channel_names) if revisit == "all" else ()
    error = None
    try:
        process.crawl(crawler, base_url=settings.base_url, profile=settings.profile,
                      channels=[profile.channel(c).slug for c in channels] if channels else None,
                      revisit=revisit_urls)
        process.start()
    except Exception as exc:  # the run must never be left "running"
        error = f"{type(exc).__name__}: {exc}"
        logging.getLogger(__name__).exception("crawl failed")
    stats = crawler.stats.get_stats() if crawler.stats else {}
    reason = stats.get("finish_reason")
    error = error or stats.get("archive/error")
    status = "failed" if error else FINISH_STATUS.get(reason, "failed")
    if status == "failed" and not error:
        error = f"crawl ended with reason {reason!r}"
    run = runs.finish_run(engine, run_id, status, stats, error)
    engine.dispose()
    return CrawlSummary.of(run)
