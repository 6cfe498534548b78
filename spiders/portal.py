"""The portal spider: walks the channels' list pages, follows articles, revisits known ones.

It only fetches and parses. What it knows of the archive arrives from
whoever starts the crawl: an iterable of known articles to revisit (with
their validators), aids to probe, and predicates that say which aids are
already known or already done. The spider itself never sees a database.
"""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from urllib.parse import urljoin

import scrapy
from scrapy import signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import TimeoutError as TxTimeoutError

from pipeline import stats as keys
from pipeline.reading.profile import load_profile
from pipeline.reading.records import (
    KEPT_HEADERS,
    ArticleGone,
    ArticleNotModified,
    CleanArticle,
    FetchFailed,
    Rejected,
    Visit,
)
from spiders.middlewares import BudgetSpent
from spiders.reader import PageReader, ReaderGone, ReadError, read_article_page, read_list_page
from spiders.stages import DICTIONARY_TRAINED
from spiders.walk import ListWalk

GONE_STATUSES = (404, 410)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
LIST_PAGE_NUMBER = re.compile(r"_(\d+)\.html$")
# Scheduler priorities: under a request budget what is fetched first is what is fetched at all.
# List pages lead to new articles, which come before anything else; failed fetches of earlier
# runs next; revisits and probes last, in the order the revisit plan gives them.
PRIORITY = {"list": 100, "new": 50, "retry": 40, "revisit": 0, "probe": 0}

# Which of the aids given the archive already has (known_aids), or this backfill did (skip_aids).
AidFilter = Callable[[list[int]], set[int]]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _headers(response) -> dict:
    out = {}
    for name in KEPT_HEADERS:
        value = response.headers.get(name)
        if value is not None:
            out[name] = value.decode("latin-1")
    return out


class PortalSpider(scrapy.Spider):
    name = "portal"

    def __init__(self, base_url: str, profile: str = "cpsia", channels: Iterable[str] | None = None,
                 walk: ListWalk | None = None, revisit: Iterable[Visit | str] = (),
                 probe_aids: Iterable[int] = (), known_aids: AidFilter | None = None,
                 skip_aids: AidFilter | None = None, follow_links: bool = True,
                 retry_lists: Iterable[str] = (), fallback: bool = True, reader: PageReader | None = None,
                 hold_revisits: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/") + "/"
        self.profile_name = profile
        self.profile = load_profile(profile)
        self.channels = [self.profile.channel(c) for c in channels] if channels else list(self.profile.channels)
        self.walk = walk or ListWalk()
        self.revisit = revisit
        self.probe_aids = probe_aids
        # known_aids says which of a page's aids the archive already has (incremental walks stop
        # on pages without new ones; which known ones to fetch again is the revisit plan's
        # decision); skip_aids which ones this backfill already archived (a resumed backfill
        # skips them).
        self.known_aids = known_aids
        self.skip_aids = skip_aids
        self.follow_links = follow_links
        # Pages the profile cannot read (a redesign) are read by the generic fallback.
        self.extraction = "auto" if fallback else "profile"
        # Decoding and extraction, in a reader process when the crawl has one (spiders/reader.py).
        self.reader = reader or PageReader(processes=0)
        self.reader.on_restart = lambda: self.crawler.stats.inc_value(keys.READER_RESTARTED)
        # List pages that failed last time: read again, and the walk goes on from them.
        self.retry_lists = retry_lists
        # Article ids already requested in this crawl: one fetch per article
        # however many URL forms of it the portal links to.
        self.requested_aids: set[int] = set()
        # Aids that list pages (or related links) showed and the archive did not
        # know: a run that archives none of them has not done its job (pipeline.archive.health).
        self.listed_new: set[int] = set()
        self.read_tally: Counter[str] = Counter()
        # Under a request budget, what is asked first is what gets asked at all: the revisits wait
        # until the list walk is over, so the new articles it finds are requested before them.
        self.hold_revisits = hold_revisits
        self.lists_pending = 0
        self.walk_over = asyncio.Event()

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._dropped, signal=signals.request_dropped)
        crawler.signals.connect(spider.reader.use, signal=DICTIONARY_TRAINED)
        return spider

    async def start(self):
        if self.walk.mode != "none":
            for channel in self.channels:
                page = self.walk.first_page()
                yield self.list_request(self.profile.list_page_url(self.base_url, channel, page), page)
        for url in self.retry_lists:
            match = LIST_PAGE_NUMBER.search(url)
            yield self.list_request(url, int(match[1]) if match else 1, kind="retry")
        if self.hold_revisits and self.lists_pending:
            await self.walk_over.wait()
        for item in self.revisit:
            request = self._visit(item if isinstance(item, Visit) else Visit(item))
            if request is not None:
                yield request
        self.probe_aids = list(self.probe_aids)
        self.crawler.stats.inc_value(keys.EXPECTED_PAGES, len(self.probe_aids))
        for aid in self.probe_aids:
            request = self._visit(Visit(None, aid=aid, kind="probe"))
            if request is not None:
                yield request

    def _visit(self, target: Visit) -> scrapy.Request | None:
        """The request for a planned visit: a URL, or (a probe) an aid asked by its mobile page."""
        if target.url is None:
            target = Visit(self.profile.mobile_article_url(self.base_url, target.aid), kind=target.kind)
        return self.article_request(target, probe=target.kind == "probe")

    def list_request(self, url: str, page: int, quiet: int = 0, kind: str = "list") -> scrapy.Request:
        self.lists_pending += 1
        return scrapy.Request(url, callback=self.parse_list, errback=self.on_error, priority=PRIORITY["list"],
                              meta={"page": page, "quiet": quiet, "budget": kind})

    def article_request(self, target: Visit, probe: bool = False, aid: int | None = None) -> scrapy.Request | None:
        """The request for an article (`aid`: the URL's, when the reader has read it already)."""
        if aid is None:
            aid = self.profile.aid_of(target.url)
        if aid is None or aid in self.requested_aids:
            return None
        self.requested_aids.add(aid)
        url = self.profile.clean_url(target.url)
        statuses = [*GONE_STATUSES, *REDIRECT_STATUSES]
        headers = {}
        if target.etag:
            headers["If-None-Match"] = target.etag
        if target.last_modified:
            headers["If-Modified-Since"] = target.last_modified
        if headers:
            statuses.append(304)
            self.crawler.stats.inc_value(keys.CONDITIONAL)
        return scrapy.Request(
            url,
            headers=headers,
            callback=self.parse_article,
            errback=self.on_error,
            priority=PRIORITY.get(target.kind, 0),
            # A redirect is read here, not followed: a redirect to the channel
            # is how the portal takes an article down.
            meta={"aid": aid, "probe": probe, "dont_redirect": True, "handle_httpstatus_list": statuses,
                  "budget": target.kind},
            dont_filter=True,
        )

    # --- list pages -------------------------------------------------------
    def _list_settled(self) -> None:
        """A list request is over (read, failed, refused or dropped): the walk may be too."""
        self.lists_pending -= 1
        if self.lists_pending <= 0:
            self.walk_over.set()

    def _dropped(self, request, spider=None) -> None:
        if request.callback == self.parse_list:
            self._list_settled()

    async def parse_list(self, response):
        try:
            async for request_or_item in self._parse_list(response):
                yield request_or_item
        finally:  # after every request the page led to is scheduled
            self._list_settled()

    async def _parse_list(self, response):
        stats = self.crawler.stats
        stats.inc_value(keys.LIST_PAGES)
        try:
            listing = await self.reader.run(read_list_page, self.profile_name, response.body, response.url,
                                            _headers(response))
        except (ReadError, ReaderGone) as exc:
            stats.inc_value(keys.FETCH_FAILED)
            yield FetchFailed(response.url, None, f"list page not read: {exc}", response.status, _now())
            return
        if listing.problem is not None:
            # A list page cut short or empty would end the walk early: fetch it again, and if it
            # stays broken record it as failed, so the next run reads it again.
            retry = get_retry_request(response.request, spider=self, reason=listing.problem.split(":")[0])
            if retry is not None:
                stats.inc_value(keys.BROKEN_RETRIED)
                self.lists_pending += 1
                yield retry
            else:
                stats.inc_value(keys.FETCH_FAILED)
                yield FetchFailed(response.url, None, f"{listing.problem} (after retries)", response.status, _now())
            return
        wanted = []
        days = [day for _, day, _ in listing.items]
        for url, day, aid in listing.items:
            if aid is not None and self.walk.in_range(day):
                wanted.append((aid, url))
        aids = [aid for aid, _ in wanted]
        skipped = self.skip_aids(aids) if self.skip_aids and aids else set()
        new_items = 0
        for request, is_new in self._requests_for(wanted, skipped):
            new_items += is_new
            if request is not None:
                yield request
        page = response.meta.get("page", 1)
        if page == self.walk.first_page():
            self._expect(listing.pager, len(listing.items))
        quiet = 0 if new_items else response.meta.get("quiet", 0) + 1
        if listing.next_url and self.walk.continue_after(page, days, new_items, quiet):
            yield self.list_request(listing.next_url, page + 1, quiet)
        elif listing.next_url:
            stats.inc_value(keys.LIST_WALK_STOPPED)

    def _requests_for(self, links: list[tuple[int, str]], skipped: set[int] = frozenset()):
        """(request or None, whether the article is new to the archive) for linked articles, given
        as (aid, URL).

        Only articles the archive does not hold are requested here: which known ones are worth a
        request is the revisit plan's decision (pipeline/revisit.py), made with the budget in view.
        """
        fresh = [aid for aid, _ in links if aid not in self.requested_aids and aid not in skipped]
        known = self.known_aids(fresh) if self.known_aids and fresh else {}
        for aid, url in links:
            if aid in skipped:
                self.crawler.stats.inc_value(keys.SKIPPED_DONE)
                continue
            if aid in self.requested_aids:  # most related links: article_request would say None
                yield None, False
                continue
            if aid in known:
                yield None, False
                continue
            self.listed_new.add(aid)
            yield self.article_request(Visit(url, kind="new"), aid=aid), True

    def _expect(self, pager: tuple[int, int] | None, per_page: int) -> None:
        """Add this channel's share to the expected page count (the progress display's ETA)."""
        if pager is None or self.walk.since is not None:
            return
        pages, items = pager
        if self.walk.pages:
            pages = max(0, min(pages, self.walk.pages[1]) - self.walk.pages[0] + 1)
            items = min(items, pages * per_page)
        self.crawler.stats.inc_value(keys.EXPECTED_PAGES, pages + items)

    # --- article pages ------------------------------------------------------
    async def parse_article(self, response):
        aid = response.meta["aid"]
        probe = response.meta.get("probe", False)
        fetched_at = _now()
        if response.status == 304:
            yield ArticleNotModified(response.url, aid, fetched_at)
            return
        if response.status in GONE_STATUSES:
            yield ArticleGone(response.url, aid, response.status, fetched_at, f"HTTP {response.status}",
                              raw=response.body, headers=_headers(response), probe=probe)
            return
        if response.status in REDIRECT_STATUSES:
            for request_or_item in self._redirected(response, aid, fetched_at, probe):
                yield request_or_item
            return
        try:
            read = await self.reader.run(read_article_page, self.profile_name, response.body, response.url, aid,
                                         response.status, _headers(response), fetched_at, self.extraction, probe,
                                         self.reader.dictionary_key)
        except (ReadError, ReaderGone) as exc:
            self.crawler.stats.inc_value(keys.FETCH_FAILED)
            yield FetchFailed(response.url, aid, f"page not read: {exc}", response.status, fetched_at)
            return
        if isinstance(read, Rejected):
            if read.broken:
                # Broken pages are mostly a flaky portal: fetch again before giving up on them.
                retry = get_retry_request(response.request, spider=self, reason=read.reason.split(":")[0])
                if retry is not None:
                    self.crawler.stats.inc_value(keys.BROKEN_RETRIED)
                    yield retry
                    return
            self._count(read.fields.get("extraction"), None)
            read.aid = aid
            read.fields = {}  # what was read is for a person at `extract`, not for the archive
            yield read
            return
        self._count(read.extraction, read.content_fields())
        yield read
        if self.follow_links:
            for request in self._follow(read):
                yield request

    def _count(self, extraction: str | None, fields: dict | None) -> None:
        """How a page was read, and which fields it has: the run's health (pipeline.archive.health),
        read after the crawl, so tallied here and added to the stats when the spider closes."""
        self.read_tally.update(keys.read_counts(extraction, fields))

    def closed(self, reason: str) -> None:
        for key, n in self.read_tally.items():
            self.crawler.stats.inc_value(key, n)

    def _redirected(self, response, aid: int, fetched_at: datetime, probe: bool):
        location = response.headers.get("Location", b"").decode("latin-1")
        target = urljoin(response.url, location)
        if self.profile.takedown_redirect(target, self.base_url):
            yield ArticleGone(response.url, aid, response.status, fetched_at,
                              f"redirected to channel {target}", raw=response.body,
                              headers=_headers(response), probe=probe)
            return
        # Moved to another article URL (http→https, new path): follow it once.
        self.requested_aids.discard(self.profile.aid_of(target))
        request = self.article_request(Visit(target, kind=response.meta.get("budget", "revisit")), probe=probe)
        if request is not None:
            yield request

    def _follow(self, article: CleanArticle):
        """Related and prev/next links: a second path to articles the lists may have shifted away."""
        for request, _ in self._requests_for(article.links):
            if request is not None:
                yield request

    def on_error(self, failure):
        request = failure.request
        if request.callback == self.parse_list:
            self._list_settled()
        if failure.check(BudgetSpent):
            return  # not sent: counted by the budget as left undone, not a failed fetch
        status = None
        if failure.check(HttpError):
            status = failure.value.response.status
            reason = f"HTTP {status} after retries"
        elif failure.check(TxTimeoutError):
            reason = "timed out after retries"
        else:
            reason = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        self.crawler.stats.inc_value(keys.FETCH_FAILED)
        yield FetchFailed(request.url, request.meta.get("aid"), reason, status, _now())
