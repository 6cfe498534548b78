"""Pages as the portal serves them: GB18030 bytes under a gb2312 declaration.

Pure functions of the state. `index` arguments are optional; the server passes
one built per state generation so that rendering a page is cheap.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import timezone
from email.utils import format_datetime
from html import escape
from urllib.parse import parse_qs

from . import templates as t
from .index import SiteIndex, build_index, neighbours, newest_first, related
from .site import CHANNEL_BY_SLUG, CHANNELS, PAGE_SIZE, Channel, display_date, list_date, parse_iso
from .state import Article, SiteState

ENCODING = "gb18030"
HTML_TYPE = "text/html; charset=gb2312"
PAGER_WINDOW = 3  # numbered links either side of the current page
# The CMS cuts <meta name="description"> from the lede: the reference page
# carries exactly its lede's first 120 characters.
DESCRIPTION_LIMIT = 120

# Byte sequences no GB18030 decoder accepts: a lead byte with an ASCII trail
# and a byte that is never valid. Injected into `bad_bytes` articles.
BAD_SEQUENCES = (b"\x81\x20", b"\xff")
_BAD_MARK = "@@BAD{}@@"

TRACKING = ("?from=timeline", "?spm=a2c4g.11186623.0.0")

_ARTICLE_PATH = re.compile(r"^/news/([a-z]+)/\d{4}/\d{4}/(\d+)\.html$")
_LIST_PATH = re.compile(r"^/news/([a-z]+)/(?:index\.html|list_(\d+)_(\d+)\.html)?$")


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _text(value: str) -> str:
    return escape(value, quote=False)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _header(current: Channel | None) -> str:
    items = [t.NAV_ITEM.format(href="/", name="首页")]
    for channel in CHANNELS:
        template = t.NAV_ITEM_CURRENT if channel is current else t.NAV_ITEM
        items.append(template.format(href=channel.root, name=channel.name))
    return t.HEADER.format(nav_first="".join(items[:3]), nav_second="".join(items[3:]))


def related_href(page: Article, target: Article) -> str:
    """Some related links use non-canonical URLs of the same article.

    Chosen from both aids so that the same target shows up in different forms
    on different pages, as on the portal: about a fifth mobile, about a
    quarter with a tracking parameter.
    """
    key = 7 * page.aid + target.aid
    if key % 5 == 0:
        return f"/m/view.php?aid={target.aid}"
    if key % 3 == 0:
        return target.path + TRACKING[key % 2]
    return target.path


def _paragraph_texts(article: Article) -> list[str]:
    texts = [_text(p) for p in article.paragraphs]
    if article.defect == "bad_bytes":
        # Markers are ASCII so they survive encoding, then become bad bytes.
        for n, at in enumerate((0, len(texts) - 1)):
            cut = 1 + article.aid % max(1, len(texts[at]) - 2)
            texts[at] = texts[at][:cut] + _BAD_MARK.format(n) + texts[at][cut:]
    return texts


def _content(article: Article) -> str:
    if article.defect == "no_body":
        return ""
    paragraphs = "".join(t.PARAGRAPH.format(text=p) for p in _paragraph_texts(article))
    return t.CONTENT.format(paragraphs=paragraphs)


def _context_link(article: Article | None) -> str:
    if article is None:
        return t.NO_CONTEXT
    return t.CONTEXT_LINK.format(href=_attr(article.path), title=_text(article.title))


def _encode_article(page: str, article: Article) -> bytes:
    body = page.encode(ENCODING)
    if article.defect == "bad_bytes":
        for n, bad in enumerate(BAD_SEQUENCES):
            body = body.replace(_BAD_MARK.format(n).encode("ascii"), bad)
    return body


def render_article(state: SiteState, article: Article, *, mobile: bool = False,
                   index: SiteIndex | None = None) -> bytes:
    """The article page. Mobile pages use the very same template and canonical
    (the desktop path), so `mobile` changes nothing today; it is kept so a
    profile for a diverging mobile template has a place to hook in."""
    index = index or build_index(state)
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
    return _encode_article(page, article)


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
                index: SiteIndex | None = None) -> bytes | None:
    """Channel list page `page` (1-based), or None when there is no such page."""
    index = index or build_index(state)
    channel = CHANNEL_BY_SLUG[channel] if isinstance(channel, str) else channel
    articles = newest_first(index, channel.slug)
    pages = page_count(len(articles))
    if not 1 <= page <= pages:
        return None
    items = "".join(
        t.LIST_ITEM.format(href=_attr(a.path), title=_text(a.title),
                           date=list_date(a.published_at), lede=_text(a.lede))
        for a in articles[(page - 1) * PAGE_SIZE:page * PAGE_SIZE])
    return t.LIST.format(
        channel_name=channel.name, channel_root=channel.root, header=_header(channel),
        items=items, pages=pages, total=len(articles), pager=_pager(channel, page, pages),
    ).encode(ENCODING)


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
                      mobile: bool) -> Response:
    if article is None:
        return not_found()
    if not article.live:
        if article.takedown == "redirect":
            root = CHANNEL_BY_SLUG[article.channel].root
            return Response(302, (("Location", root), ("Content-Type", HTML_TYPE)), b"")
        return not_found()
    body = render_article(state, article, mobile=mobile, index=index)
    return _html(body, extra=(("ETag", etag(body)), ("Last-Modified", http_date(article.modified_at))))


def route(state: SiteState, path: str, query: str = "", index: SiteIndex | None = None) -> Response:
    """Answer one GET the way the portal would. Query strings are ignored
    everywhere except the mobile view's `aid`."""
    index = index or build_index(state)
    if path in ("/", "/index.html", "/m/", "/m/index.php"):
        return _html(render_home())
    if path == "/robots.txt":
        return Response(200, (("Content-Type", "text/plain"),), t.ROBOTS.encode("ascii"))
    if path == "/m/view.php":
        aid = parse_qs(query).get("aid", [""])[0]
        article = state.articles.get(int(aid)) if aid.isdigit() else None
        return _article_response(state, article, index, mobile=True)
    if match := _ARTICLE_PATH.match(path):
        article = state.articles.get(int(match.group(2)))
        if article is not None and article.path != path:
            article = None  # right aid under a wrong folder: not a page of the portal
        return _article_response(state, article, index, mobile=False)
    if match := _LIST_PATH.match(path):
        channel = CHANNEL_BY_SLUG.get(match.group(1))
        typeid, page = match.group(2), match.group(3)
        if channel is None or (typeid is not None and int(typeid) != channel.typeid):
            return not_found()
        body = render_list(state, channel, int(page) if page else 1, index)
        return _html(body) if body is not None else not_found()
    return not_found()
