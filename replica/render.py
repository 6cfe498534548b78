"""Pages as the portal serves them: GB18030 bytes under a gb2312 declaration.

Pure functions of the state. `index` arguments are optional; the server passes
one built per state generation so that rendering a page is cheap.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace
from datetime import timezone
from email.utils import format_datetime
from urllib.parse import parse_qs

from . import redesign
from . import templates as t
from .drift import DriftPlan
from .index import SiteIndex, build_index, neighbours, newest_first, related
from .markup import (BAD_SEQUENCES, DESCRIPTION_LIMIT, ENCODING, HTML_TYPE, TRACKING,  # noqa: F401 - re-exported
                     attr as _attr, body_paragraphs, encode_article, encode_page, header as _header,
                     mark_bad, related_href, text as _text)
from .site import CHANNEL_BY_SLUG, CHANNELS, PAGE_SIZE, Channel, display_date, list_date, parse_iso
from .state import Article, SiteState

PAGER_WINDOW = 3  # numbered links either side of the current page

# Page variants the fault mode serves now and then (faults.py): the content
# block present but empty, or invalid bytes inside the body text.
PAGE_FAULTS = ("empty_page", "bad_bytes")

_ARTICLE_PATH = re.compile(r"^/news/([a-z]+)/\d{4}/\d{4}/(\d+)\.html$")
_LIST_PATH = re.compile(r"^/news/([a-z]+)/(?:index\.html|list_(\d+)_(\d+)\.html)?$")


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def page_kind(path: str) -> str | None:
    """"article" or "list" when the path has the form of one, else None."""
    if path == "/m/view.php" or _ARTICLE_PATH.match(path):
        return "article"
    if _LIST_PATH.match(path):
        return "list"
    return None


def _content(article: Article) -> str:
    if article.defect == "no_body":
        return ""
    return t.CONTENT.format(paragraphs=body_paragraphs(article))


def _context_link(article: Article | None) -> str:
    if article is None:
        return t.NO_CONTEXT
    return t.CONTEXT_LINK.format(href=_attr(article.path), title=_text(article.title))


def faulty_article(article: Article, fault: str | None) -> Article:
    """The article as a page fault shows it, this time only."""
    if fault == "empty_page":
        return replace(article, paragraphs=[], defect=None, special=None)
    if fault == "bad_bytes" and article.defect is None:  # a page without a body stays so
        return replace(article, defect="bad_bytes")
    return article


def render_article(state: SiteState, article: Article, *, mobile: bool = False,
                   index: SiteIndex | None = None, drift: DriftPlan | None = None) -> bytes:
    """The article page. Mobile pages use the very same template and canonical
    (the desktop path), so `mobile` changes nothing today; it is kept so a
    profile for a diverging mobile template has a place to hook in. Articles
    that `drift` picks are served in the redesigned layout (redesign.py)."""
    index = index or build_index(state)
    if drift is not None and drift.applies(article.aid):
        return redesign.render_article(article, index)
    channel = CHANNEL_BY_SLUG[article.channel]
    prev_article, next_article = neighbours(index, article)
    related_items = "".join(
        t.RELATED_ITEM.format(href=_attr(related_href(article, other)),
                              title=_text(other.title), lede=_text(other.lede))
        for other in related(index, article))
    tags = " ".join(t.TAG_LINK.format(tag=_text(tag)) for tag in article.tags)
    page = t.ARTICLE.format(
        title=_text(article.title), channel_name=channel.name, channel_root=channel.root,
        keywords=_attr(",".join(article.tags)), description=_attr(article.lede[:DESCRIPTION_LIMIT]),
        canonical=_attr(article.path), header=_header(channel),
        time=display_date(article.published_at, article.date_style), aid=article.aid,
        lede=_text(article.lede), content=_content(article), editor=_text(article.editor),
        source=_text(article.source), tags=tags, prev=_context_link(prev_article),
        next=_context_link(next_article), related=related_items,
    )
    return encode_article(page, article)


def _pager(channel: Channel, page: int, pages: int) -> str:
    def href(n: int) -> str:
        return channel.root if n == 1 else f"list_{channel.typeid}_{n}.html"

    def link(n: int, label: str, alive: bool) -> str:
        return t.PAGER_LINK.format(href=href(n), label=label) if alive else t.PAGER_DEAD.format(label=label)

    window = range(max(1, page - PAGER_WINDOW), min(pages, page + PAGER_WINDOW) + 1)
    numbers = {n: (t.PAGER_CURRENT.format(page=n) if n == page else link(n, str(n), True))
               for n in window}
    # Line breaks fall where the reference has them, for page 1 exactly so.
    lines = [
        link(1, "首页", page > 1) + link(page - 1, "上一页", page > 1)
        + "".join(numbers[n] for n in window if n <= page),
        "".join(numbers[n] for n in window if n > page),
        link(page + 1, "下一页", page < pages) + link(pages, "末页", page < pages),
    ]
    return "".join(f"    {line}\n" for line in lines if line)


def page_count(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def render_list(state: SiteState, channel: Channel | str, page: int,
                index: SiteIndex | None = None, *, fault: str | None = None) -> bytes | None:
    """Channel list page `page` (1-based), or None when there is no such page.
    `fault` is one of PAGE_FAULTS: no items at all, or bad bytes in the first intro."""
    index = index or build_index(state)
    channel = CHANNEL_BY_SLUG[channel] if isinstance(channel, str) else channel
    articles = newest_first(index, channel.slug)
    pages = page_count(len(articles))
    if not 1 <= page <= pages:
        return None
    shown = [] if fault == "empty_page" else articles[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    ledes = [_text(a.lede) for a in shown]
    if fault == "bad_bytes" and ledes:
        ledes[0] = mark_bad(ledes[0], 1, 0)
    items = "".join(
        t.LIST_ITEM.format(href=_attr(a.path), title=_text(a.title),
                           date=list_date(a.published_at), lede=lede)
        for a, lede in zip(shown, ledes))
    return encode_page(t.LIST.format(
        channel_name=channel.name, channel_root=channel.root, header=_header(channel),
        items=items, pages=pages, total=len(articles), pager=_pager(channel, page, pages),
    ), bad=fault == "bad_bytes")


def render_home() -> bytes:
    channels = "".join(t.HOME_CHANNEL.format(href=c.root, name=c.name) for c in CHANNELS)
    return t.HOME.format(header=_header(None), channels=channels).encode(ENCODING)


def render_not_found() -> bytes:
    return t.NOT_FOUND.encode(ENCODING)


def http_date(iso: str) -> str:
    return format_datetime(parse_iso(iso).astimezone(timezone.utc), usegmt=True)


def etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:20] + '"'


def _html(body: bytes, status: int = 200, extra: tuple = ()) -> Response:
    return Response(status, (("Content-Type", HTML_TYPE),) + extra, body)


def not_found() -> Response:
    return _html(render_not_found(), 404)


def _article_response(state: SiteState, article: Article | None, index: SiteIndex,
                      mobile: bool, drift: DriftPlan | None, fault: str | None) -> Response:
    if article is None:
        return not_found()
    if not article.live:
        if article.takedown == "redirect":
            root = CHANNEL_BY_SLUG[article.channel].root
            return Response(302, (("Location", root), ("Content-Type", HTML_TYPE)), b"")
        return not_found()
    body = render_article(state, faulty_article(article, fault), mobile=mobile, index=index, drift=drift)
    return _html(body, extra=(("ETag", etag(body)), ("Last-Modified", http_date(article.modified_at))))


def route(state: SiteState, path: str, query: str = "", index: SiteIndex | None = None, *,
          drift: DriftPlan | None = None, fault: str | None = None) -> Response:
    """Answer one GET the way the portal would. Query strings are ignored
    everywhere except the mobile view's `aid`. `drift` serves some articles
    in the redesigned layout; `fault` (one of PAGE_FAULTS) is the page a
    fault shows instead of the normal one (the server's fault mode)."""
    index = index or build_index(state)
    if path in ("/", "/index.html", "/m/", "/m/index.php"):
        return _html(render_home())
    if path == "/robots.txt":
        return Response(200, (("Content-Type", "text/plain"),), t.ROBOTS.encode("ascii"))
    if path == "/m/view.php":
        aid = parse_qs(query).get("aid", [""])[0]
        article = state.articles.get(int(aid)) if aid.isdigit() else None
        return _article_response(state, article, index, True, drift, fault)
    if match := _ARTICLE_PATH.match(path):
        article = state.articles.get(int(match.group(2)))
        if article is not None and article.path != path:
            article = None  # right aid under a wrong folder: not a page of the portal
        return _article_response(state, article, index, False, drift, fault)
    if match := _LIST_PATH.match(path):
        channel = CHANNEL_BY_SLUG.get(match.group(1))
        typeid, page = match.group(2), match.group(3)
        if channel is None or (typeid is not None and int(typeid) != channel.typeid):
            return not_found()
        body = render_list(state, channel, int(page) if page else 1, index, fault=fault)
        return _html(body) if body is not None else not_found()
    return not_found()
