"""The portal spider: walks every channel's list pages, follows every article.

It only fetches and parses. Known articles to revisit arrive as an iterable
of URLs from whoever starts the crawl, so the spider never sees the archive.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from urllib.parse import urljoin

import scrapy
from parsel import Selector
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import TimeoutError as TxTimeoutError

from spiders.decode import UndecodablePage, decode_page
from spiders.extract import extract_article, extract_list
from spiders.items import ArticleGone, ArticlePage, FetchFailed
from spiders.profile import load_profile

GONE_STATUSES = (404, 410)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
KEPT_HEADERS = ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Location")


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
                 revisit: Iterable[str] = (), follow_links: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/") + "/"
        self.profile = load_profile(profile)
        self.channels = [self.profile.channel(c) for c in channels] if channels else list(self.profile.channels)
        self.revisit = revisit
        self.follow_links = follow_links
        # Article ids already requested in this crawl: one fetch per article
        # however many URL forms of it the portal links to.
        self.requested_aids: set[int] = set()

    async def start(self):
        for channel in self.channels:
            yield scrapy.Request(self.profile.channel_root_url(self.base_url, channel),
                                 callback=self.parse_list)
        for url in self.revisit:
            request = self.article_request(url)
            if request is not None:
                yield request

    def article_request(self, url: str) -> scrapy.Request | None:
        url = self.profile.clean_url(url)
        aid = self.profile.aid_of(url)
        if aid is None or aid in self.requested_aids:
            return None
        self.requested_aids.add(aid)
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.on_error,
            # A redirect is read here, not followed: a redirect to the channel
            # is how the portal takes an article down.
            meta={"aid": aid, "dont_redirect": True,
                  "handle_httpstatus_list": [*GONE_STATUSES, *REDIRECT_STATUSES]},
            dont_filter=True,
        )

    def parse_list(self, response):
        self.crawler.stats.inc_value("portal/list_pages")
        links, next_url = extract_list(self.profile, Selector(text=response.text), response.url)
        for link in links:
            request = self.article_request(link)
            if request is not None:
                yield request
        if next_url:
            yield scrapy.Request(next_url, callback=self.parse_list)

    def parse_article(self, response):
        aid = response.meta["aid"]
        fetched_at = _now()
        if response.status in GONE_STATUSES:
            yield ArticleGone(response.url, aid, response.status, fetched_at, f"HTTP {response.status}",
                              raw=response.body, headers=_headers(response))
            return
        if response.status in REDIRECT_STATUSES:
            yield from self._redirected(response, aid, fetched_at)
            return
        page = ArticlePage(url=response.url, aid=aid, http_status=response.status, fetched_at=fetched_at,
                           raw=response.body, headers=_headers(response))
        try:
            text, page.encoding = decode_page(response.body, page.headers.get("Content-Type"),
                                              self.profile.gb_family)
        except UndecodablePage as exc:
            page.problem = f"undecodable page: {exc}"
            yield page
            return
        page.fields = extract_article(self.profile, text, response.url)
        yield page
        if self.follow_links:
            yield from self._follow(page.fields)

    def _redirected(self, response, aid: int, fetched_at: datetime):
        location = response.headers.get("Location", b"").decode("latin-1")
        target = urljoin(response.url, location)
        if self.profile.is_channel_list(target) or target.rstrip("/") + "/" == self.base_url:
            yield ArticleGone(response.url, aid, response.status, fetched_at,
                              f"redirected to channel {target}", raw=response.body,
                              headers=_headers(response))
            return
        # Moved to another article URL (http→https, new path): follow it once.
        self.requested_aids.discard(self.profile.aid_of(target))
        request = self.article_request(target)
        if request is not None:
            yield request

    def _follow(self, fields: dict):
        """Related and prev/next links: a second path to articles the lists may have shifted away."""
        links = [r["url"] for r in fields.get("related") or []]
        links += [c["url"] for c in (fields.get("context") or {}).values() if c]
        for link in links:
            request = self.article_request(link)
            if request is not None:
                yield request

    def on_error(self, failure):
        request = failure.request
        status = None
        if failure.check(HttpError):
            status = failure.value.response.status
            reason = f"HTTP {status} after retries"
        elif failure.check(TxTimeoutError):
            reason = "timed out after retries"
        else:
            reason = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        self.crawler.stats.inc_value("portal/fetch_failed")
        yield FetchFailed(request.url, request.meta.get("aid"), reason, status, _now())
