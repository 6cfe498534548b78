"""Read an article page's fields with the profile's selectors.

The values stay as the page shows them (labels, indents, markup); turning
them into archive values is the cleaning stage's job, so a cleaning fix can
be replayed over stored pages without re-reading the portal.
"""
from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel import Selector
from parsel.csstranslator import HTMLTranslator

from pipeline.reading.profile import Profile

VISIBLE_TEXT = ".//text()[not(ancestor::script)][not(ancestor::style)]"
# libxml2 stops reading a document nested deeper than about this (the rest of
# the page is silently dropped); the portal's editor has been seen wrapping a
# body in thousands of bare <div><span> levels.
MAX_NESTING = 255
# Long runs of bare wrapper tags, opening or closing: removed, they leave the page's real structure.
WRAPPER_RUN = re.compile(r"(?:<(?:div|span|font)\s*>\s*){16,}|(?:</(?:div|span|font)\s*>\s*){16,}", re.I)
WRAPPER_TAG = re.compile(r"<(/?)(?:div|span|font)\b[^>]*>", re.I)

# The document is parsed once (parsel builds the tree exactly as Scrapy's
# selectors do); the profile's CSS selectors are translated by parsel's own
# translator and compiled once, then run on lxml nodes directly. Going through
# Selector.css for each of the ~90 queries a page needs cost more than parsing
# the page (bench --profile), for the same results.
_VISIBLE = etree.XPath(VISIBLE_TEXT, smart_strings=False)
_CHILD_NODES = etree.XPath("node()", smart_strings=False)
_STRING = etree.XPath("string()", smart_strings=False)
_TRANSLATOR = HTMLTranslator()  # the translator parsel's own Selector.css uses for HTML


@lru_cache(maxsize=256)
def _compiled(css: str) -> etree.XPath:
    return etree.XPath(_TRANSLATOR.css_to_xpath(css), smart_strings=False)


# urljoin costs ~20 µs, and an article page has a dozen links to resolve. The portal's are
# nearly all site-relative paths, which join to the page's origin plus the path; anything
# urljoin might rewrite (dot segments, an empty query, fragment or parameters, tabs and
# newlines it strips, a scheme-relative //host) goes to urljoin itself.
_PLAIN_PATH = re.compile(r"/(?!/)[^#;\t\r\n]*")
_REWRITTEN = re.compile(r"/\.|\?$")


@lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def join_url(base: str, href: str) -> str:
    """urljoin(base, href), the same string, in a fraction of the time for site-relative paths."""
    if _PLAIN_PATH.fullmatch(href) and not _REWRITTEN.search(href):
        origin = _origin(base)
        if origin is not None:
            return origin + href
    return urljoin(base, href)


def select(node, css: str) -> list:
    """What the CSS selector matches under the node: elements, or strings for ::attr() and ::text."""
    return _compiled(css)(node)


def select_first(node, css: str):
    found = _compiled(css)(node)
    return found[0] if found else None


def root_of(doc) -> etree._Element:
    """The lxml root of a parsel Selector (or the node itself)."""
    return doc.root if isinstance(doc, Selector) else doc


def nesting_depth(html: str) -> int:
    depth = deepest = 0
    for match in WRAPPER_TAG.finditer(html):
        depth += -1 if match[1] else 1
        deepest = max(deepest, depth)
    return deepest


def visible_text(node) -> str:
    return "".join(_VISIBLE(node))


def first_text(doc, selectors: list[str] | str) -> str | None:
    """Visible text of the first selector that matches something non-blank."""
    for css in [selectors] if isinstance(selectors, str) else selectors:
        for node in select(doc, css):
            text = visible_text(node)
            if text.strip():
                return text
    return None


def first_node(doc, selectors: list[str]):
    for css in selectors:
        found = select_first(doc, css)
        if found is not None:
            return found
    return None


def inner_html(node) -> str:
    """The node's content as markup (serialized as parsel's .getall() would)."""
    return "".join(child if isinstance(child, str) else
                   etree.tostring(child, method="html", encoding="unicode", with_tail=False)
                   for child in _CHILD_NODES(node))


def extract_article(profile: Profile, text: str, url: str) -> dict:
    """The article page's raw fields, keyed as the cleaning stage expects."""
    fields = _extract(profile, Selector(text=text).root, url)
    body = fields["body_html"]
    if (body is None or "<p" not in body) and nesting_depth(text) > MAX_NESTING:
        # Bare wrappers carry no meaning; without them the parser reads the whole page.
        fields = _extract(profile, Selector(text=WRAPPER_RUN.sub("", text)).root, url)
        fields["flattened"] = True
    return fields


def _extract(profile: Profile, doc, url: str) -> dict:
    rules = profile.article
    body = first_node(doc, rules["body"])
    canonical = select_first(doc, rules["canonical"])
    return {
        "title": first_text(doc, rules["title"]),
        "head_title": first_text(doc, rules["head_title"]),
        "published": first_text(doc, rules["published"]),
        "lede": first_text(doc, rules["lede"]),
        "body_html": inner_html(body) if body is not None else None,
        "editor": first_text(doc, rules["editor"]),
        "source": first_text(doc, rules["source"]),
        "tags": _tags(doc, rules["tags"]),
        "channel": first_text(doc, rules["breadcrumb_channel"]),
        "canonical": join_url(url, canonical.strip()) if canonical else None,
        "context": _context(doc, rules["context_links"], url),
        "related": _related(doc, rules, url),
    }


def _tags(doc, selectors: list[str]) -> list[str] | str | None:
    """Tag link texts when the tags are links, else the container's text (label and all)."""
    links, container = selectors[0], selectors[1]
    found = [visible_text(a) for a in select(doc, links)]
    if found:
        return found
    return first_text(doc, container)


def _context(doc, css: str, url: str) -> dict:
    """上一篇 / 下一篇 links: the chain through the archive."""
    out = {"prev": None, "next": None}
    for li in select(doc, css):
        text = visible_text(li)
        key = "prev" if "上一篇" in text else "next" if "下一篇" in text else None
        href = select_first(li, "a::attr(href)")
        if key and href:
            out[key] = {"url": join_url(url, href.strip()), "title": visible_text(select(li, "a")[0]).strip()}
    return out


def _related(doc, rules: dict, url: str) -> list[dict]:
    out = []
    for li in select(doc, rules["related_items"]):
        href = select_first(li, rules["related_link"])
        if not href:
            continue
        title = select_first(li, rules["related_title"])
        summary = select_first(li, rules["related_summary"])
        out.append({
            "url": join_url(url, href.strip()),
            "title": visible_text(title).strip() if title is not None else None,
            "summary": visible_text(summary).strip() if summary is not None else None,
        })
    return out


def extract_list(profile: Profile, doc, url: str) -> tuple[list[tuple[str, str]], str | None]:
    """([(article URL, date text)] on a channel list page, the next page's URL or None)."""
    doc = root_of(doc)
    rules = profile.list
    items = []
    for li in select(doc, rules["item"]):
        href = select_first(li, rules["item_link"])
        if href:
            items.append((join_url(url, href.strip()), "".join(visible_text(n) for n in select(li, rules["item_date"]))
                          or ""))
    next_href = None
    for css in rules["next_page"]:
        next_href = select_first(doc, css)
        if next_href:
            break
    return items, join_url(url, next_href.strip()) if next_href else None


def list_pager(profile: Profile, doc) -> tuple[int, int] | None:
    """(pages, articles) as the list page's pager counts them (共 N页M条), if it does."""
    info = select_first(root_of(doc), profile.list["page_info"])
    info = _STRING(info) if info is not None else ""
    numbers = [int(n) for n in re.findall(r"\d+", info)]
    return (numbers[0], numbers[1]) if len(numbers) >= 2 else None
