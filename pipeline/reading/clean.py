"""Cleaning: an article page's raw fields → the archive's values, or the reason there are none.

Plain functions (value in, value out); pipeline.reading.chain runs them after
extraction, in the crawl's reader process, in `extract` and in `reparse` alike.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.reading.dates import DateParseError, parse_portal_date
from pipeline.reading.html import clean_body
from pipeline.reading.profile import Profile
from pipeline.reading.records import CleanArticle, Page
from pipeline.reading.text import normalize_inline, origin_source, split_tags, strip_label


class RejectPage(ValueError):
    pass


def clean_article(profile: Profile, fields: dict, page: Page, aid: int, probe: bool = False) -> CleanArticle:
    """The archive's values for one article page read into raw `fields`; RejectPage says why
    there are none."""
    raw = fields
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
        aid=aid,
        url=_canonical_url(profile, raw.get("canonical"), page.url, aid),
        page=page,
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
        probe=probe,
        profile_miss=raw.get("profile_miss"),
    )


def _canonical_url(profile: Profile, canonical: str | None, fetched: str, aid: int) -> str:
    """The page's own canonical link when it names this article, else the desktop URL fetched."""
    if canonical and profile.aid_of(canonical) == aid:
        return profile.clean_url(canonical)
    return profile.clean_url(fetched)


def _channel(profile: Profile, breadcrumb: str | None, url: str) -> str:
    name = normalize_inline(breadcrumb)
    if name:
        return name
    match = profile.article_re.match(urlsplit(url).path)
    if match:
        return profile.channel(match["slug"]).name
    return ""
