"""Downloader middlewares: retries that back off, robots.txt obeyed by every request, and a
request budget that no run exceeds.

Scrapy retries at once, which hammers a portal that is already struggling;
and Scrapy 2.19 lets requests that wait for robots.txt go out unchecked.
"""
from __future__ import annotations

import asyncio
import logging

from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from pipeline import stats as keys

logger = logging.getLogger(__name__)


class RetryBackoff:
    """Delays a retried request by base * 2^(n-1) seconds before it is downloaded again
    (RETRY_BACKOFF_BASE: the retry_backoff setting, ops/config.py), and gives it a longer download
    timeout: DOWNLOAD_TIMEOUT * 2^n, at most TIMEOUT_GROWTH times the setting. A page that
    always takes a little longer than the timeout (a large page on a slow portal, or a loaded
    machine) would otherwise time out on every attempt and be missed run after run."""

    TIMEOUT_GROWTH = 4

    def __init__(self, base: float, timeout: float):
        self.base = base
        self.timeout = timeout

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        return cls(settings.getfloat("RETRY_BACKOFF_BASE"), settings.getfloat("DOWNLOAD_TIMEOUT"))

    async def process_request(self, request):
        retries = request.meta.get("retry_times", 0)
        if retries and self.timeout > 0:
            request.meta["download_timeout"] = self.timeout * min(2 ** retries, self.TIMEOUT_GROWTH)
        if retries and self.base > 0:
            await asyncio.sleep(self.base * 2 ** (retries - 1))
        return None


class RobotsTxt:
    """robots.txt obeyed by every request, the first ones of a crawl included.

    Scrapy 2.19's RobotsTxtMiddleware lets the requests that arrive while
    robots.txt is downloading await one shared Deferred; the first waiter's
    callback returns None, so every later waiter is handed None ("no
    robots.txt") and goes out unchecked (a disallowed list page and article
    were fetched at the start of a crawl). This one keeps one asyncio future a
    site, which every waiter awaits, and uses only Scrapy's public API: the
    engine's download_async and the ROBOTSTXT_PARSER class. Like Scrapy's, it
    reads a robots.txt that cannot be fetched as "everything allowed".
    """

    PRIORITY = 1000  # robots.txt goes before anything waiting for it

    def __init__(self, crawler):
        self.crawler = crawler
        self.parser_class = load_object(crawler.settings["ROBOTSTXT_PARSER"])
        self.user_agent = crawler.settings.get("ROBOTSTXT_USER_AGENT")
        self.parsers: dict[str, asyncio.Future] = {}

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured("ROBOTSTXT_OBEY is off")
        return cls(crawler)

    async def process_request(self, request):
        if request.meta.get("dont_obey_robotstxt") or not request.url.startswith(("http://", "https://")):
            return None
        parser = await self._parser(request)
        agent = self.user_agent or request.headers.get(b"User-Agent") or b""
        if parser is not None and not parser.allowed(request.url, agent):
            self.crawler.stats.inc_value("robotstxt/forbidden")
            raise IgnoreRequest("Forbidden by robots.txt")
        return None

    async def _parser(self, request):
        site = urlparse_cached(request)
        future = self.parsers.get(site.netloc)
        if future is None:
            future = self.parsers[site.netloc] = asyncio.get_running_loop().create_future()
            robots = Request(f"{site.scheme}://{site.netloc}/robots.txt", priority=self.PRIORITY,
                             meta={"dont_obey_robotstxt": True}, callback=NO_CALLBACK)
            stats = self.crawler.stats
            stats.inc_value("robotstxt/request_count")
            try:
                response = await self.crawler.engine.download_async(robots)
            except Exception as exc:  # unreachable robots.txt: allowed, as Scrapy does
                logger.warning("robots.txt of %s could not be fetched (%s): everything allowed", site.netloc, exc)
                future.set_result(None)
            else:
                stats.inc_value(f"robotstxt/response_status_count/{response.status}")
                future.set_result(self.parser_class.from_crawler(self.crawler, response.body))
        return await asyncio.shield(future)


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
            self.stats.inc_value(keys.LEFT + kind)
            raise BudgetSpent(f"request budget of {self.allowance} spent")
        self.stats.inc_value(keys.BUDGET_SPENT)
        self.stats.inc_value(keys.SPENT + kind)
        return None

    @staticmethod
    def kind(request) -> str:
        meta = request.meta
        if meta.get("retry_times"):
            return "retry"
        if "budget" in meta:  # every request the spider makes says what it is for
            return meta["budget"]
        return "robots" if urlparse_cached(request).path == "/robots.txt" else "other"
