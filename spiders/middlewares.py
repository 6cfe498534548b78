"""Downloader middlewares: retries that back off, and robots.txt obeyed by every request.

Scrapy retries at once, which hammers a portal that is already struggling;
and Scrapy 2.19 lets requests that wait for robots.txt go out unchecked.
"""
from __future__ import annotations

import asyncio

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class RetryBackoff:
    """Delays a retried request by base * 2^(n-1) seconds before it is downloaded again."""

    def __init__(self, base: float):
        self.base = base

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getfloat("RETRY_BACKOFF_BASE", 0.5))

    async def process_request(self, request):
        retries = request.meta.get("retry_times", 0)
        if retries and self.base > 0:
            await asyncio.sleep(self.base * 2 ** (retries - 1))
        return None


class RobotsTxt(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every request that waits for robots.txt checked.

    Scrapy 2.19's `robot_parser` lets the requests that arrive while robots.txt
    is downloading await one shared Deferred through `maybe_deferred_to_future`;
    the first waiter's callback returns None, so every later waiter is handed
    None — "no robots.txt" — and goes out unchecked (tests/test_revalidate.py
    caught a disallowed list page and article fetched at the start of a crawl).
    Here each waiter gets its own Deferred, fired with the parser and passing it
    on down the shared chain.
    """

    async def robot_parser(self, request):
        parser = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(parser, Deferred):
            return await super().robot_parser(request)
        mine: Deferred = Deferred()

        def hand_on(result):
            mine.callback(result)
            return result

        parser.addCallback(hand_on)
        return await maybe_deferred_to_future(mine)
