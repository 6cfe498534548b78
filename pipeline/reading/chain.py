"""Reading a page: decode → extract (the profile first, the generic fallback when the profile
misses) → clean → fingerprint, in one function.

Used by the crawl's reader process after each fetch, and offline on stored or saved pages
(`portal-archive extract`, `portal-archive reparse`), so that all three read a page exactly the
same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from parsel import Selector

from pipeline.reading.clean import RejectPage, clean_article
from pipeline.reading.compression import Compressor
from pipeline.reading.dates import DateParseError, parse_portal_date
from pipeline.reading.decode import UndecodablePage, decode_page
from pipeline.reading.extract import extract_article, extract_list, list_pager
from pipeline.reading.fallback import extract_fallback
from pipeline.reading.fingerprint import fingerprint
from pipeline.reading.integrity import body_problem, page_problem
from pipeline.reading.profile import Profile
from pipeline.reading.records import CleanArticle, Page, Rejected

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


@dataclass
class ListPage:
    """A channel list page read: its items (URL, the day listed if readable, the aid if the link
    is an article's), the next page's URL, the pager's (pages, articles), or the problem that
    makes it a broken page."""

    items: list[tuple[str, date | None, int | None]] = field(default_factory=list)
    next_url: str | None = None
    pager: tuple[int, int] | None = None
    problem: str | None = None


def read_page(profile: Profile, raw: bytes, *, url: str, fetched_at: datetime, aid: int | None = None,
              http_status: int = 200, headers: dict | None = None, method: str = "auto",
              probe: bool = False, compressor: Compressor | None = None) -> CleanArticle | Rejected:
    """An article page's bytes, read as the archive reads every page: checked whole, decoded,
    extracted (the profile, else the fallback), cleaned and fingerprinted, the page itself
    compressed (with `compressor`: the archive's current dictionary, if it has one) and hashed.
    The one chain the crawl's reader, `extract` and `reparse` run.

    A page cut short, empty or undecodable comes back `Rejected(broken=True)`: most often a
    flaky portal, so the crawl fetches it again before quarantining it; one without a title,
    a body or a date is unarchivable as it is (`broken=False`).
    """
    headers = dict(headers or {})
    encoding, fields = None, {}
    problem = page_problem(raw, headers)
    if problem is None:
        try:
            text, encoding = decode_page(raw, headers.get("Content-Type"), profile.gb_family)
            fields = read_article(profile, text, url, method)
            problem = body_problem(fields)
        except UndecodablePage as exc:
            problem = f"undecodable page: {exc}"
        except Exception as exc:  # a page no rule foresaw: kept, with the reason, like any broken page
            problem = f"page could not be read: {type(exc).__name__}: {exc}"
    aid = aid or profile.aid_of(url) or (profile.aid_of(fields["canonical"]) if fields.get("canonical") else None)
    page = Page.of(raw, url=url, http_status=http_status, headers=headers, fetched_at=fetched_at, encoding=encoding,
                   compressor=compressor)
    if problem is not None:
        return Rejected(url, aid, problem, fetched_at, page, broken=True, fields=fields)
    try:
        article = fingerprint(clean_article(profile, fields, page, aid or 0, probe))
    except RejectPage as exc:
        return Rejected(url, aid, str(exc), fetched_at, page, fields=fields)
    except Exception as exc:  # a bug in a cleaning rule: the page is kept with it
        return Rejected(url, aid, f"cleaning failed: {type(exc).__name__}: {exc}", fetched_at, page, fields=fields)
    article.links = article_links(profile, article)
    return article


def read_list(profile: Profile, raw: bytes, *, url: str, headers: dict | None = None) -> ListPage:
    """A channel list page's bytes, read: its articles, the next page, the pager; a page cut
    short, or listing nothing under a pager that counts articles, is broken (fetched again)."""
    headers = dict(headers or {})
    problem = page_problem(raw, headers)
    try:
        text, _ = decode_page(raw, headers.get("Content-Type"), profile.gb_family)
    except UndecodablePage:
        # Only links and dates are read off a list page: a damaged character costs nothing there.
        text = raw.decode("gb18030", errors="replace")
    doc = Selector(text=text)
    items, next_url = extract_list(profile, doc, url)
    pager = list_pager(profile, doc)
    if problem is None and not items and (pager[1] if pager else None) != 0:
        problem = "empty list page: no articles listed under a pager that counts some"
    return ListPage([(link, _day(profile, when), profile.aid_of(link)) for link, when in items], next_url, pager,
                    problem)


def article_links(profile: Profile, article: CleanArticle) -> list[tuple[int, str]]:
    """(aid, URL) of the articles a page links to (related, previous and next): the crawl's
    second path to articles the lists may have shifted away."""
    urls = [r["url"] for r in article.related or []]
    urls += [c["url"] for c in (article.context or {}).values() if c]
    return [(aid, url) for url in urls if (aid := profile.aid_of(url)) is not None]


def _day(profile: Profile, text: str) -> date | None:
    try:
        return parse_portal_date(text, profile.timezone).date()
    except DateParseError:
        return None
