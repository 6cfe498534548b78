"""Archive stage: writes items in batches, one transaction per batch.

A batch either lands whole or not at all, so a kill mid-crawl leaves the
archive consistent and the next run simply fetches the lost tail again.
"""
from __future__ import annotations

import logging

from scrapy.exceptions import NotConfigured

from pipeline.db import make_engine, session_factory
from pipeline.gaps import record_probe
from pipeline.models import BackfillArticle
from pipeline.records import CleanArticle, Rejected
from pipeline.versions import (
    record_article,
    record_fetch_failure,
    record_gone,
    record_not_modified,
    record_quarantine,
)
from spiders.items import ArticleGone, ArticleNotModified, FetchFailed

log = logging.getLogger(__name__)


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
        self.engine = make_engine(self.db_url, self.busy_timeout_ms)
        self.session = session_factory(self.engine)()

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
        outcomes = []
        try:
            for item in batch:
                outcomes.append(self._record(item))
            self.session.commit()
        except Exception as exc:
            self.session.rollback()
            self.failed = f"archive write failed: {type(exc).__name__}: {exc}"
            log.error(self.failed)
            self.crawler.stats.set_value("archive/error", self.failed)
            self._stop_crawl("archive_error")
            return
        for outcome in outcomes:
            self.stats.inc_value(f"archive/{outcome}")

    def _stop_crawl(self, reason: str) -> None:
        engine = self.crawler.engine
        if hasattr(engine, "close_spider_async"):  # Scrapy >= 2.14
            engine.close_spider_async(reason=reason)
        else:
            engine.close_spider(self.crawler.spider, reason)

    def _record(self, item) -> str:
        if isinstance(item, CleanArticle):
            outcome, linked = record_article(self.session, self.run_id, item)
            if linked:
                self.stats.inc_value("archive/duplicates")
            if item.probe:
                record_probe(self.session, item.aid, "found", item.fetched_at)
                self.stats.inc_value("gaps/found")
            self._done(item.aid)
            return outcome
        if isinstance(item, ArticleNotModified):
            self._done(item.aid)
            return record_not_modified(self.session, item)
        if isinstance(item, ArticleGone):
            outcome = record_gone(self.session, self.run_id, item, self.confirmations)
            if item.probe and outcome == "gone_unknown":
                record_probe(self.session, item.aid, "missing", item.fetched_at)
            self._done(item.aid)
            return outcome
        if isinstance(item, Rejected):
            record_quarantine(self.session, self.run_id, item)
            return "quarantined"
        if isinstance(item, FetchFailed):
            record_fetch_failure(self.session, self.run_id, item)
            return "fetch_failed"
        raise TypeError(f"the archive does not know {type(item).__name__}")

    def _done(self, aid: int) -> None:
        """Remember, in the same transaction, that this backfill has archived the aid."""
        if self.backfill_id is not None:
            self.session.merge(BackfillArticle(backfill_id=self.backfill_id, aid=aid))
