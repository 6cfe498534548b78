"""Progress of a long crawl on stderr: pages, outcomes, errors, rate and (when known) ETA."""
from __future__ import annotations

import sys

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from pipeline import stats as keys
from pipeline.archive.outcomes import Written

REFRESH_SECONDS = 1.0


class Progress:
    def __init__(self, stats, allowance: int = -1):
        self.stats = stats
        self.allowance = allowance  # the run's request budget (-1: no limit)
        self.bar = None
        self.loop = None

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("PORTAL_ARCHIVE_PROGRESS"):
            raise NotConfigured("progress display not asked for")
        ext = cls(crawler.stats, crawler.settings.getint("PORTAL_ARCHIVE_REQUEST_ALLOWANCE", -1))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider):
        from tqdm import tqdm

        self.bar = tqdm(unit="page", file=sys.stderr, dynamic_ncols=True, mininterval=REFRESH_SECONDS)
        self.loop = task.LoopingCall(self.refresh)
        self.loop.start(REFRESH_SECONDS, now=False)

    def refresh(self):
        counters = self.stats.get_stats()
        total = keys.count(counters, keys.EXPECTED_PAGES)
        if total and total != self.bar.total:
            self.bar.total = total
        self.bar.n = keys.count(counters, keys.RESPONSES)
        new = keys.count(counters, keys.archive(Written.NEW))
        errors = (keys.count(counters, keys.archive(Written.FETCH_FAILED))
                  + keys.count(counters, keys.archive(Written.QUARANTINED)))
        self.bar.set_postfix_str(
            f"new {new} unchanged {keys.unchanged(counters)} changed {keys.versions_written(counters) - new} "
            f"errors {errors}"
            + (f" budget {keys.count(counters, keys.BUDGET_SPENT)}/{self.allowance}" if self.allowance >= 0 else ""),
            refresh=False)
        self.bar.refresh()

    def closed(self, spider):
        if self.loop and self.loop.running:
            self.loop.stop()
        if self.bar is not None:
            self.refresh()
            self.bar.close()
