"""Archive stage: writes items in batches, one transaction per batch.

A batch either lands whole or not at all, so a kill mid-crawl leaves the
archive consistent and the next run simply fetches the lost tail again.
"""
from __future__ import annotations

import logging

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro

from pipeline.db import make_engine, session_factory
from pipeline.writer import ArchiveWriter, ArchiveWriteError

log = logging.getLogger(__name__)
# Writer outcomes whose crawler stats key is not archive/<outcome>.
STATS_KEYS = {"gaps_found": "gaps/found"}


class ArchiveStage:
    def __init__(self, db_url: str, run_id: int, batch_size: int, takedown_confirmations: int, crawler,
                 backfill_id: int | None = None, busy_timeout_ms: int = 30_000):
        self.db_url = db_url
        self.busy_timeout_ms = busy_timeout_ms
        self.backfill_id = backfill_id
        self.run_id = run_id
        self.batch_size = batch_size
        self.confirmations = takedown_confirmations
        self.crawler = crawler
        self.stats = crawler.stats
        self.buffer: list = []
        self.failed: str | None = None

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        if not s.get("PORTAL_ARCHIVE_DB") or not s.getint("PORTAL_ARCHIVE_RUN_ID"):
            raise NotConfigured("the archive stage needs PORTAL_ARCHIVE_DB and PORTAL_ARCHIVE_RUN_ID")
        return cls(s["PORTAL_ARCHIVE_DB"], s.getint("PORTAL_ARCHIVE_RUN_ID"),
                   s.getint("PORTAL_ARCHIVE_BATCH_SIZE", 200),
                   s.getint("PORTAL_ARCHIVE_TAKEDOWN_CONFIRMATIONS", 1), crawler,
                   s.getint("PORTAL_ARCHIVE_BACKFILL_ID") or None,
                   s.getint("PORTAL_ARCHIVE_SQLITE_BUSY_TIMEOUT_MS", 30_000))

    def open_spider(self):
        self.engine = make_engine(self.db_url, self.busy_timeout_ms, writer=True)
        self.session = session_factory(self.engine)()
        self.writer = ArchiveWriter(self.session, self.run_id, self.confirmations, self.backfill_id)

    def close_spider(self):
        try:
            self.flush()
        finally:
            self.session.close()
            self.engine.dispose()

    def process_item(self, item):
        if self.failed:
            return item
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        if not self.buffer or self.failed:
            return
        batch, self.buffer = self.buffer, []
        try:
            outcomes = self.writer.write(batch)
        except ArchiveWriteError as exc:
            return self._fail(exc)
        for outcome, count in outcomes.items():
            if count:
                self.stats.inc_value(STATS_KEYS.get(outcome, f"archive/{outcome}"), count)

    def _fail(self, exc: Exception) -> None:
        self.failed = f"archive write failed: {exc}"
        log.error(self.failed)
        self.crawler.stats.set_value("archive/error", self.failed)
        self._stop_crawl("archive_error")

    def _stop_crawl(self, reason: str) -> None:
        engine = self.crawler.engine
        if hasattr(engine, "close_spider_async"):  # Scrapy >= 2.14
            deferred_from_coro(engine.close_spider_async(reason=reason))
        else:
            engine.close_spider(self.crawler.spider, reason)
