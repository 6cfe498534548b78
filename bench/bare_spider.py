"""The baseline: a bare Scrapy spider that walks the portal's lists and articles and does nothing else.

    python -m bench.bare_spider http://127.0.0.1:PORT [--stats FILE]

It fetches what a full crawl fetches (each channel root, every list page
through the pager's 下一页 link, every article linked from a list page) and
yields only each page's URL and size. Scrapy's default settings, except the
politeness the archive's crawl also uses: 32 concurrent requests (per domain
too), no download delay, no AutoThrottle, robots.txt not read. It knows
nothing of the archive's code; the selectors are the portal's markup, written out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import scrapy
from scrapy.crawler import CrawlerProcess

CHANNEL_SLUGS = ("hyzx", "zcfg", "djyd", "qydt", "jsqy")
ARTICLE_LINKS = ".listbox li a.title::attr(href)"
NEXT_PAGE = ".dede_pages a:contains('下一页')::attr(href)"

# The only departures from Scrapy's defaults (scrapy/settings/default_settings.py).
SETTINGS = {
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "ROBOTSTXT_OBEY": False,
}


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    async def start(self):
        for slug in CHANNEL_SLUGS:
            yield scrapy.Request(f"{self.base_url}/news/{slug}/", callback=self.parse_list)

    def parse_list(self, response):
        yield {"url": response.url, "size": len(response.body)}
        for href in response.css(ARTICLE_LINKS).getall():
            yield response.follow(href, callback=self.parse_article)
        next_page = response.css(NEXT_PAGE).get()
        if next_page:
            yield response.follow(next_page, callback=self.parse_list)

    def parse_article(self, response):
        yield {"url": response.url, "size": len(response.body)}


def crawl(base_url: str, settings: dict | None = None) -> dict:
    """Run the spider to the end (once per process: it runs the reactor); returns Scrapy's stats."""
    process = CrawlerProcess({**SETTINGS, **(settings or {})})
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, base_url=base_url)
    process.start()
    return crawler.stats.get_stats()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url")
    parser.add_argument("--stats", type=Path, help="Write Scrapy's final stats here as JSON.")
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                        help="An extra Scrapy setting (housekeeping such as REMOTE_CONTROL_JOBS_DIR).")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)
    stats = crawl(args.base_url, extra)
    if args.stats:
        args.stats.write_text(json.dumps(stats, default=str, indent=1))
    ok = stats.get("finish_reason") == "finished" and stats.get("downloader/response_count", 0) > 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
