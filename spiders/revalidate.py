"""Revisits answered 304, asked without Scrapy's per-request machinery.

A revisit of a known article sends the validators the portal gave
(If-None-Match / If-Modified-Since). On a revisit of the whole archive nearly
every answer is 304, and Scrapy spends ≈0.9 ms of CPU on each (engine,
scheduler, downloader, middlewares, signals) where a keep-alive aiohttp
client spends ≈0.1 ms (bench --profile). So the spider asks first with
aiohttp and takes only a 304 from it: the same `ArticleNotModified` the
Scrapy path yields. Any other answer — 200, 404, a redirect, a 5xx — goes on
to Scrapy with its request, and the `Prefetched` downloader middleware hands
Scrapy those bytes instead of downloading them again: every downloader
middleware's process_response (stats, decompression, retries of a 5xx), the
redirect reading, integrity checks and takedown confirmation see it exactly
as if Scrapy had fetched it. A timeout or a reset goes to Scrapy as the
request's first failed attempt (its retries do the rest): no page is taken
for gone or unchanged on this path but a 304.

It keeps the crawl's politeness: the crawl's User-Agent and default headers,
robots.txt when obeyed (a disallowed URL is left to Scrapy), DOWNLOAD_MAXSIZE,
and never more requests in flight, its own and Scrapy's together, than
CONCURRENT_REQUESTS_PER_DOMAIN: its requests hold places in Scrapy's download
slot for the portal. It does not run at all where Scrapy paces
the crawl (DOWNLOAD_DELAY, AutoThrottle) or a proxy is configured: those
are Scrapy's to honour, and with a delay the CPU it saves does not matter.

Counting: a 304 it keeps (and its robots.txt) is counted in Scrapy's
downloader stats (`downloader/request_count`, `downloader/response_count`,
`downloader/response_status_count/<status>`) by the revalidator; a prefetched
answer is counted by Scrapy's own DownloaderStats when it passes through, so
a run's "pages fetched" is every response the portal sent, each once.
`portal/revalidation/*` says what went which way.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import scrapy
from scrapy.downloadermiddlewares.httpcompression import ACCEPTED_ENCODINGS
from scrapy.http import Headers
from scrapy.responsetypes import responsetypes
from scrapy.utils.misc import build_from_crawler, load_object

from spiders.items import ArticleNotModified

logger = logging.getLogger(__name__)

CONDITIONAL_HEADERS = (b"If-None-Match", b"If-Modified-Since")
STATS = "portal/revalidation/"
PREFETCHED = "portal_prefetched"  # request.meta key: the answer the revalidator already has


def why_not(settings) -> str | None:
    """Why this crawl's settings leave revalidation to Scrapy, or None when it may run."""
    if not settings.getbool("PORTAL_ARCHIVE_REVALIDATE", True):
        return "turned off (revalidate = false)"
    if settings.getfloat("DOWNLOAD_DELAY") > 0:
        return "DOWNLOAD_DELAY paces the crawl"
    if settings.getbool("AUTOTHROTTLE_ENABLED"):
        return "AutoThrottle paces the crawl"
    if settings.getint("PORTAL_ARCHIVE_REQUEST_ALLOWANCE", -1) >= 0:
        return "a request budget counts every request in Scrapy's downloader"
    return None


def _proxied(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in getproxies() and not proxy_bypass(parts.hostname or "")


class Revalidator:
    """Sifts a stream of article requests: conditional ones are asked here first."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.limit = max(1, min(settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
                                settings.getint("CONCURRENT_REQUESTS")))
        self.timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        headers = {k: v for k, v in settings.getdict("DEFAULT_REQUEST_HEADERS").items()}
        headers["User-Agent"] = settings["USER_AGENT"]
        if settings.getbool("COMPRESSION_ENABLED"):
            headers["Accept-Encoding"] = b", ".join(ACCEPTED_ENCODINGS).decode()
        self.headers = headers
        self.obey_robots = settings.getbool("ROBOTSTXT_OBEY")
        self.robots_agent = settings.get("ROBOTSTXT_USER_AGENT") or settings["USER_AGENT"]
        self.use_proxies = settings.getbool("HTTPPROXY_ENABLED")
        self.off: str | None = why_not(settings)
        self.robots: dict[str, object] = {}  # netloc -> Scrapy's robots.txt parser
        self.maxsize = settings.getint("DOWNLOAD_MAXSIZE")
        self.session = None
        if self.off:
            self.stats.set_value(STATS + "off", self.off)

    # --- the stream ------------------------------------------------------------
    async def sift(self, requests: Iterable[scrapy.Request]) -> AsyncIterator[scrapy.Request | ArticleNotModified]:
        """Yield each request, or the ArticleNotModified that a 304 answer to it stands for."""
        pending: set[asyncio.Task] = set()
        try:
            for request in requests:
                if not await self._askable(request):
                    yield request
                    continue
                slot = self._slot(request)
                while self._full(slot):  # the budget is spent, by us or by Scrapy
                    if not pending:
                        await asyncio.sleep(0.01)
                        continue
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
                self._hold(slot, request)
                pending.add(asyncio.ensure_future(self._ask(request, slot)))
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()
            await self.close()

    # The concurrency budget is Scrapy's: a request in flight here holds a place among the
    # downloader's active requests (which the engine checks before it hands the downloader
    # more) and in the download slot for the portal's host, so neither side can exceed it
    # (Scrapy 2.19's Downloader and Slot; the version is pinned below 2.20).
    def _slot(self, request: scrapy.Request):
        return self.crawler.engine.downloader._get_slot(request)[1]

    def _full(self, slot) -> bool:
        """No room for another request: the downloader's budget or the host's slot is spent, or the
        scraper is behind (more than SCRAPER_SLOT_MAX_ACTIVE_SIZE of responses waiting: answers
        handed over with their bytes must not pile up faster than pages are read)."""
        engine = self.crawler.engine
        scraper = engine.scraper.slot
        return (engine.downloader.needs_backout() or slot.free_transfer_slots() <= 0
                or (scraper is not None and scraper.needs_backout()))

    def _hold(self, slot, request: scrapy.Request) -> None:
        self.crawler.engine.downloader.active.add(request)
        slot.active.add(request)  # an active slot is not garbage-collected
        slot.transferring.add(request)
        slot.lastseen = time.monotonic()

    def _release(self, slot, request: scrapy.Request) -> None:
        engine = self.crawler.engine
        slot.transferring.discard(request)
        slot.active.discard(request)
        engine.downloader.active.discard(request)
        engine.downloader._process_queue(slot)  # Scrapy's queued requests may go now
        if engine._slot is not None:
            engine._slot.nextcall.schedule()  # and the engine may hand it more

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()

    # --- one request -------------------------------------------------------------
    async def _askable(self, request: scrapy.Request) -> bool:
        if self.off or not any(name in request.headers for name in CONDITIONAL_HEADERS):
            return False
        if self.use_proxies and _proxied(request.url):
            self._step_aside(f"a proxy is configured for {urlsplit(request.url).scheme}")
            return False
        if self.session is None:
            import aiohttp

            self.session = aiohttp.ClientSession(
                # Scrapy verifies no certificates by default; neither does this.
                connector=aiohttp.TCPConnector(limit=self.limit, ssl=False),
                timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self.headers,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"), auto_decompress=False,
            )
        if self.obey_robots:
            robots = await self._robots(request)
            if robots is None:
                return False
            if not robots.allowed(request.url, self.robots_agent):
                self.stats.inc_value(STATS + "left_to_scrapy/robots")
                return False
        return True

    async def _ask(self, request: scrapy.Request, slot) -> scrapy.Request | ArticleNotModified:
        try:
            return await self._asked(request)
        finally:
            self._release(slot, request)

    async def _asked(self, request: scrapy.Request) -> scrapy.Request | ArticleNotModified:
        headers = {name.decode(): request.headers[name].decode("latin-1")
                   for name in CONDITIONAL_HEADERS if name in request.headers}
        self.stats.inc_value(STATS + "requests")
        try:
            async with self.session.get(request.url, headers=headers, allow_redirects=False) as response:
                status, answer = response.status, await self._read(response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: Scrapy asks again, with retries
            self.stats.inc_value("downloader/request_count")
            self.stats.inc_value(STATS + "errors")
            self.stats.inc_value(f"{STATS}errors/{type(exc).__name__}")
            # This was the request's first attempt: Scrapy's retries make the rest of them.
            request.meta["retry_times"] = request.meta.get("retry_times", 0) + 1
            return request
        if status == 304:
            self._count(304)
            self.stats.inc_value(STATS + "not_modified")
            return ArticleNotModified(request.url, request.meta["aid"], datetime.now(timezone.utc))
        if answer is None:  # larger than DOWNLOAD_MAXSIZE: Scrapy fetches and refuses it itself
            self._count(status)
            self.stats.inc_value(STATS + "too_large")
            return request
        self.stats.inc_value(STATS + "prefetched")
        request.meta[PREFETCHED] = answer
        return request

    async def _read(self, response) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """(status, headers, body) as the portal sent them (still compressed; none for a 304), or None
        when larger than DOWNLOAD_MAXSIZE."""
        length = response.content_length
        if self.maxsize and length is not None and length > self.maxsize:
            return None
        body = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            body += chunk
            if self.maxsize and len(body) > self.maxsize:
                return None
        return response.status, list(response.raw_headers), bytes(body)

    def _count(self, status: int) -> None:
        self.stats.inc_value("downloader/request_count")
        self.stats.inc_value("downloader/response_count")
        self.stats.inc_value(f"downloader/response_status_count/{status}")

    def _step_aside(self, reason: str) -> None:
        if self.off is None:
            self.off = reason
            self.stats.set_value(STATS + "off", reason)
            logger.info("revalidation left to Scrapy for the rest of the run: %s", reason)

    async def _robots(self, request: scrapy.Request):
        """Scrapy's robots.txt parser for the request's site, read once; None (and off) if it cannot be read."""
        parts = urlsplit(request.url)
        if parts.netloc in self.robots:
            return self.robots[parts.netloc]
        self.stats.inc_value(STATS + "robots_requests")
        slot = self._slot(request)
        while self._full(slot):
            await asyncio.sleep(0.01)
        self._hold(slot, request)
        try:
            async with self.session.get(f"{parts.scheme}://{parts.netloc}/robots.txt",
                                        headers={"Accept-Encoding": "identity"}) as response:
                body = await response.read()
                self._count(response.status)
                if response.headers.get("Content-Encoding", "identity") not in ("identity", ""):
                    raise ValueError(f"robots.txt came {response.headers['Content-Encoding']}-encoded")
        except Exception as exc:  # noqa: BLE001 - Scrapy's own robots handling takes over
            self.stats.inc_value("downloader/request_count")
            self._step_aside(f"robots.txt could not be read ({type(exc).__name__}: {exc})")
            return None
        finally:
            self._release(slot, request)
        parser = build_from_crawler(load_object(self.crawler.settings["ROBOTSTXT_PARSER"]), self.crawler, body)
        self.robots[parts.netloc] = parser
        return parser


class Prefetched:
    """Downloader middleware: a request the revalidator already has the answer to is answered with it.

    Placed after every other downloader middleware's process_request, so the
    request is counted and shaped as any other; the answer then passes through
    all of their process_response methods, as a download would.
    """

    def process_request(self, request):
        answer = request.meta.pop(PREFETCHED, None)  # popped: a retry of this request downloads
        if answer is None:
            return None
        status, headers, body = answer
        headers = Headers(headers)
        cls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return cls(url=request.url, status=status, headers=headers, body=body, request=request,
                   protocol="HTTP/1.1")
