"""Running Scrapy once, for the operations above the crawl layer (ops/crawl.py, ops/distributed.py).

They build the settings and the spider's arguments from the archive; this is
where they meet Scrapy: a CrawlerProcess with one spider, its reader
processes, and what came of it (the crawler's stats, the new articles the
lists showed, the error that stopped it). The Twisted reactor runs once per
process: a process crawls once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from scrapy.crawler import CrawlerProcess

from pipeline.reading.compression import Dictionary
from spiders.helpers import tune_gc
from spiders.reader import PageReader

log = logging.getLogger(__name__)


@dataclass
class Crawled:
    stats: dict
    listed_new: set[int] = field(default_factory=set)
    error: str | None = None


def run_spider(settings: dict, spider_cls, reader_processes: int, *,
               on_start: Callable[[object], None] | None = None, dictionary: Dictionary | None = None,
               **spider_args) -> Crawled:
    """Crawl with `spider_cls` until it closes. `on_start` is given the crawler's stats collector
    before the crawl starts (a distributed worker reports them while it runs); `dictionary` is the
    archive's current one, which the readers compress the pages with."""
    reader = PageReader(reader_processes, dictionary)
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spider_cls)
    error = None
    try:
        process.crawl(crawler, reader=reader, **spider_args)
        if on_start is not None:
            on_start(crawler.stats)
        tune_gc()
        process.start()
    except Exception as exc:  # the run must never be left "running"
        error = f"{type(exc).__name__}: {exc}"
        log.exception("crawl failed")
    finally:
        reader.close()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return Crawled(stats, set(getattr(crawler.spider, "listed_new", ())), error)
