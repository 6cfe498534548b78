"""Reading an article page: the profile first, the generic fallback when the profile misses.

Used by the spider after each fetch, and offline on stored or saved pages
(`portal-archive extract`, `portal-archive reparse`), so that all three read
a page exactly the same way.
"""
from __future__ import annotations

from datetime import datetime

from pipeline.rules.dates import DateParseError, parse_portal_date
from spiders.decode import UndecodablePage, decode_page
from spiders.extract import extract_article
from spiders.fallback import extract_fallback
from spiders.integrity import body_problem
from spiders.items import ArticlePage
from spiders.profile import Profile

METHODS = ("auto", "profile", "fallback")
PROFILE = "profile"


def profile_miss(profile: Profile, fields: dict) -> str | None:
    """What the profile's selectors failed to find on the page (title, body, date), if anything.

    The <title> is no title here: every page has one, redesigned or not.
    """
    missing = []
    if not (fields.get("title") or "").strip():
        missing.append("title")
    if fields.get("body_html") is None:
        missing.append("body")
    try:
        parse_portal_date(fields.get("published"), profile.timezone)
    except DateParseError:
        missing.append("date")
    return "profile found no " + ", ".join(missing) if missing else None


def read_article(profile: Profile, text: str, url: str, method: str = "auto") -> dict:
    """The page's raw fields, with `extraction` saying how they were read.

    `auto` takes the profile's fields unless they miss the title, the body
    or the date; a body container that is there but empty is a broken page
    (fetched again, then quarantined), not a redesign, and stays the
    profile's. `profile` and `fallback` force one method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown extraction method {method!r}; known: {', '.join(METHODS)}")
    if method != "fallback":
        fields = extract_article(profile, text, url)
        fields["extraction"] = PROFILE
        if method == "profile" or body_problem(fields):
            return fields
        miss = profile_miss(profile, fields)
        if miss is None:
            return fields
    fields = extract_fallback(text, url, profile.timezone)
    if method == "auto":
        fields["profile_miss"] = miss
    return fields


def read_bytes(profile: Profile, raw: bytes, content_type: str | None, url: str,
               method: str = "auto") -> tuple[str | None, dict, str | None]:
    """(encoding, raw fields, problem) of an article page's bytes; no fields if undecodable."""
    try:
        text, encoding = decode_page(raw, content_type, profile.gb_family)
    except UndecodablePage as exc:
        return None, {}, f"undecodable page: {exc}"
    fields = read_article(profile, text, url, method)
    return encoding, fields, body_problem(fields)


def page_from_bytes(profile: Profile, raw: bytes, url: str, *, headers: dict | None = None,
                    http_status: int = 200, fetched_at: datetime, method: str = "auto",
                    aid: int | None = None) -> ArticlePage:
    """An ArticlePage read from bytes already fetched: what the spider yields, without a fetch."""
    headers = dict(headers or {})
    page = ArticlePage(url=url, aid=aid if aid is not None else profile.aid_of(url) or 0,
                       http_status=http_status, fetched_at=fetched_at, raw=raw, headers=headers)
    page.encoding, page.fields, page.problem = read_bytes(profile, raw, headers.get("Content-Type"), url, method)
    if not page.aid and page.fields.get("canonical"):
        page.aid = profile.aid_of(page.fields["canonical"]) or 0
    return page
