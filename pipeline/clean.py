"""Cleaning stage: raw page fields → archive values, or a rejection with its reason."""
from __future__ import annotations

from urllib.parse import urlsplit

from scrapy.exceptions import NotConfigured

from pipeline.records import CleanArticle, Rejected
from pipeline.rules.dates import DateParseError, parse_portal_date
from pipeline.rules.html import clean_body
from pipeline.rules.text import normalize_inline, origin_source, split_tags, strip_label
from spiders.items import ArticlePage
from spiders.profile import Profile, load_profile
from spiders.reader import PageReader, ReadError, ReaderGone


class RejectPage(ValueError):
    pass


def clean_article(profile: Profile, page: ArticlePage) -> CleanArticle:
    """The archive's values for one article page; RejectPage says why there are none."""
    if page.problem:
        raise RejectPage(page.problem)
    raw = page.fields
    labels = profile.labels
    title = normalize_inline(raw.get("title"))
    if not title:
        title = profile.title_suffix.sub("", normalize_inline(raw.get("head_title")))
    if not title:
        raise RejectPage("missing title")
    if raw.get("body_html") is None:
        tried = " (nor any article text the fallback could find)" if raw.get("extraction", "profile") != "profile" else ""
        raise RejectPage(f"missing body: no body container on the page{tried}")
    body_html, body_text = clean_body(raw["body_html"])
    if not body_text:
        raise RejectPage("missing body: the body container is empty")
    try:
        published_at = parse_portal_date(raw.get("published"), profile.timezone)
    except DateParseError as exc:
        raise RejectPage(f"missing date: {exc}") from None
    texts = [title, body_text, raw.get("lede") or ""]
    if any("\ufffd" in t for t in texts):
        raise RejectPage("replacement characters in the text: the page's bytes were damaged")
    return CleanArticle(
        aid=page.aid,
        url=_canonical_url(profile, page),
        fetched_from=page.url,
        http_status=page.http_status,
        fetched_at=page.fetched_at,
        raw=page.raw,
        headers=page.headers,
        encoding=page.encoding,
        channel=_channel(profile, raw.get("channel"), raw.get("canonical") or page.url),
        title=title,
        published_at=published_at,
        lede=strip_label(raw.get("lede"), labels["lede"]) or None,
        body_html=body_html,
        body_text=body_text,
        editor=strip_label(raw.get("editor"), labels["editor"]) or None,
        source=strip_label(raw.get("source"), labels["source"]) or None,
        origin_source=origin_source(body_text, profile.origin_source_re),
        tags=split_tags(raw.get("tags"), labels["tags"]),
        related=raw.get("related") or [],
        context=raw.get("context") or {},
        extraction=raw.get("extraction") or "profile",
        probe=page.probe,
    )


def _canonical_url(profile: Profile, page: ArticlePage) -> str:
    """The page's own canonical link when it names this article, else the desktop URL fetched."""
    canonical = page.fields.get("canonical")
    if canonical and profile.aid_of(canonical) == page.aid:
        return profile.clean_url(canonical)
    return profile.clean_url(page.url)


def _channel(profile: Profile, breadcrumb: str | None, url: str) -> str:
    name = normalize_inline(breadcrumb)
    if name:
        return name
    match = profile.article_re.match(urlsplit(url).path)
    if match:
        return profile.channel(match["slug"]).name
    return ""


def clean_page(profile_name: str, page: ArticlePage) -> CleanArticle | str:
    """clean_article by profile name, with the rejection's reason as the value: what a
    reader process runs for the stage (spiders/reader.py)."""
    try:
        return clean_article(load_profile(profile_name), page)
    except RejectPage as exc:
        return str(exc)


class CleanStage:
    """Cleans in the crawl's reader process when it has one (the page's bytes stay here)."""

    def __init__(self, profile_name: str, stats, reader: PageReader | None = None):
        self.profile_name = profile_name
        self.stats = stats
        self.reader = reader or PageReader(processes=0)

    @classmethod
    def from_crawler(cls, crawler):
        name = crawler.settings.get("PORTAL_ARCHIVE_PROFILE")
        if not name:
            raise NotConfigured("PORTAL_ARCHIVE_PROFILE is not set")
        return cls(name, crawler.stats, getattr(crawler.spider, "reader", None))

    async def process_item(self, item):
        if not isinstance(item, ArticlePage):
            return item
        if item.fields:
            method = "profile" if item.fields.get("extraction", "profile") == "profile" else "fallback"
            self.stats.inc_value(f"clean/extraction/{method}")
        raw, item.raw = item.raw, b""  # the bytes are not cleaned: they need not travel
        try:
            clean = await self.reader.run(clean_page, self.profile_name, item)
        except ReaderGone:
            clean = clean_page(self.profile_name, item)
        except ReadError as exc:  # a bug in a cleaning rule: the page is kept with it
            clean = f"cleaning failed: {exc}"
        finally:
            item.raw = raw
        if isinstance(clean, str):
            self.stats.inc_value("clean/rejected")
            return Rejected(item.url, item.aid, clean, item.http_status, item.fetched_at,
                            item.raw, item.headers, item.encoding)
        clean.raw = raw
        self.stats.inc_value("clean/ok")
        count_fields(self.stats, clean)
        return clean


def count_fields(stats, clean: CleanArticle) -> None:
    """Which fields an archived article has: the run's field coverage (pipeline.health)."""
    for name, value in clean.content_fields().items():
        if value:
            stats.inc_value(f"clean/field/{name}")
