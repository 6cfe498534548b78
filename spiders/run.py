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
from scrapy.settings import default_settings

from spiders.helpers import tune_gc
from spiders.reader import PageReader

log = logging.getLogger(__name__)

# Scrapy's default components that this crawl does not use: named here and left out of
# the `*_BASE` settings built from Scrapy's own defaults below, so they are neither called
# per request (or per callback output) nor imported at start. A component only disabled
# (`None`, or its `*_ENABLED = False`) is still imported when Scrapy orders the list: the
# remote control's aiohttp and the cookie middleware's tldextract cost ≈0.12 s of every run.
UNUSED_EXTENSIONS = {
    # No control surface on the network: the telnet console and the remote control HTTP
    # server (which runs Python sent to it) that Scrapy 2.19 starts by default.
    "scrapy.extensions.telnet.TelnetConsole",
    "scrapy.extensions.remote_control.RemoteControl",
    "scrapy.extensions.memdebug.MemoryDebugger",
    "scrapy.extensions.feedexport.FeedExporter",  # items go to the archive, not to feeds
}
UNUSED_DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware",  # spiders.middlewares.RobotsTxt instead
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware",  # requests are built from the profile
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware",  # the portal has no login
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware",  # takedowns are HTTP redirects
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",  # the portal sets none we need
}
UNUSED_SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware",  # the portal's URLs are short
    "scrapy.spidermiddlewares.depth.DepthMiddleware",  # walks are bounded by ListWalk, not depth
    # The spider re-requests broken pages through get_retry_request, which carries the
    # retry count in meta on purpose; the meta-copy detector would warn on every one.
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware",
}


def default_components_used() -> dict:
    """The `*_BASE` settings: Scrapy's default component lists less the unused ones above (a
    default that a later Scrapy adds stays in)."""
    def without(base: dict, unused: set[str]) -> dict:
        return {path: order for path, order in base.items() if path not in unused}

    return {"EXTENSIONS_BASE": without(default_settings.EXTENSIONS_BASE, UNUSED_EXTENSIONS),
            "DOWNLOADER_MIDDLEWARES_BASE": without(default_settings.DOWNLOADER_MIDDLEWARES_BASE,
                                                   UNUSED_DOWNLOADER_MIDDLEWARES),
            "SPIDER_MIDDLEWARES_BASE": without(default_settings.SPIDER_MIDDLEWARES_BASE, UNUSED_SPIDER_MIDDLEWARES)}


@dataclass
class Crawled:
    stats: dict
    listed_new: set[int] = field(default_factory=set)
    error: str | None = None


def run_spider(settings: dict, spider_cls, reader: PageReader, *,
               on_start: Callable[[object], None] | None = None, **spider_args) -> Crawled:
    """Crawl with `spider_cls` until it closes, its pages read by `reader` (closed after). `on_start`
    is given the crawler's stats collector before the crawl starts (a distributed worker reports
    them while it runs)."""
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
