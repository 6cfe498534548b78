"""Downloader middlewares: retries that back off, robots.txt obeyed by every request, and a
request budget that no run exceeds.

Scrapy retries at once, which hammers a portal that is already struggling;
and Scrapy 2.19 lets requests that wait for robots.txt go out unchecked.
"""
from __future__ import annotations

import asyncio

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
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


class BudgetSpent(IgnoreRequest):
    """The run's request budget is spent: the request was not sent (and is no failed fetch)."""


class RequestBudget:
    """Counts every request that goes out to the portal and refuses those beyond the run's
    allowance (PORTAL_ARCHIVE_REQUEST_ALLOWANCE; negative or unset: no limit, only counting).

    It sits after every other process_request, so only requests that would really be sent are
    counted: robots.txt itself, every retry, and nothing robots.txt forbade. What each was spent
    on is counted in stats as budget/spent/<kind> (the request's meta "budget": list, new, retry,
    revisit, probe; Scrapy's own retries count as retry; robots.txt as robots), and what was left
    unsent as budget/left/<kind>. The spider asks for what matters most first (its scheduler
    priorities), so what is left is what matters least.
    """

    def __init__(self, stats, allowance: int | None, take=None):
        self.stats = stats
        self.allowance = allowance
        self.sent = 0
        # Counts one request and says how many the run has sent: locally, or (distributed
        # workers sharing one allowance) with Redis's atomic INCR on the run's budget key.
        self.take = take or self._take_locally

    def _take_locally(self) -> int:
        self.sent += 1
        return self.sent

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        allowance = settings.getint("PORTAL_ARCHIVE_REQUEST_ALLOWANCE", -1)
        take = None
        if settings.get("PORTAL_ARCHIVE_BUDGET_REDIS_KEY") and allowance >= 0:
            import redis

            client, key = redis.Redis.from_url(settings["REDIS_URL"]), settings["PORTAL_ARCHIVE_BUDGET_REDIS_KEY"]
            take = lambda: client.incr(key)  # noqa: E731
        return cls(crawler.stats, allowance if allowance >= 0 else None, take)

    def process_request(self, request):
        kind = self.kind(request)
        if self.allowance is not None and self.take() > self.allowance:
            self.stats.inc_value(f"budget/left/{kind}")
            raise BudgetSpent(f"request budget of {self.allowance} spent")
        self.stats.inc_value("budget/spent")
        self.stats.inc_value(f"budget/spent/{kind}")
        return None

    @staticmethod
    def kind(request) -> str:
        if request.meta.get("retry_times"):
            return "retry"
        if urlparse_cached(request).path == "/robots.txt":
            return "robots"
        return request.meta.get("budget", "other")
