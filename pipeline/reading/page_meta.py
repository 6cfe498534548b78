"""What a page says about itself in markup: JSON-LD, Open Graph, `itemprop`, `<time>`, `<h1>`.

Read before any text heuristic: a page's structured data is written for
machines and is right far more often than a date or a title guessed from the
text (it is what search engines show). Pure functions over an lxml document.
"""
from __future__ import annotations

import json
import re
from html import unescape

from pipeline.reading.dates import find_date

# Article types whose JSON-LD headline and dates are the page's own (not a WebSite's or an Organization's).
ARTICLE_TYPES = re.compile(r"Article|Posting|Report|Blog|NewsArticle|WebPage", re.I)
# <meta> names and properties of the publication time, best first.
PUBLISHED_META = ("article:published_time", "og:article:published_time", "og:published_time", "og:release_date",
                  "datePublished", "dc.date.issued", "DC.date.issued", "dcterms.created", "pubdate", "publishdate",
                  "PubDate", "publish_time", "publish-date", "sailthru.date", "parsely-pub-date",
                  "weibo: article:create_at", "date")
TITLE_META = ("og:title", "twitter:title", "ArticleTitle", "headline", "dc.title", "DC.title")
SITE_META = ("og:site_name", "application-name", "apple-mobile-web-app-title", "twitter:site")
# A heading longer than this is a paragraph set in large type, not a title.
MAX_TITLE_CHARS = 300
TITLE_SEPARATORS = re.compile(r"\s+[-–—|·•:»]\s+|\s*[_|｜]\s*|\s*(?:&#8211;|–|—)\s*")
_BLANKS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")


def norm(text: str | None) -> str:
    return _BLANKS.sub(" ", text or "").strip()


def _value(text: str | None) -> str:
    """A value written for machines, where CMSs often escape twice (`&#8217;` in a <meta>)."""
    return norm(unescape(text or "")) if "&" in (text or "") else norm(text)


def _meta(doc, names: tuple[str, ...]) -> list[str]:
    found = {}
    for node in doc.iter("meta"):
        key = node.get("property") or node.get("name") or node.get("itemprop")
        value = _value(node.get("content"))
        if key and value and key.strip() in names:
            found.setdefault(key.strip(), value)
    return [found[name] for name in names if name in found]


def json_ld(doc) -> list[dict]:
    """The page's JSON-LD objects of an article type, flattened out of `@graph` and lists."""
    out = []

    def walk(item):
        if isinstance(item, list):
            for part in item:
                walk(part)
        elif isinstance(item, dict):
            if "@graph" in item:
                walk(item["@graph"])
            kind = item.get("@type")
            kind = " ".join(kind) if isinstance(kind, list) else str(kind or "")
            if ARTICLE_TYPES.search(kind):
                out.append(item)

    for script in doc.xpath("//script[@type='application/ld+json']"):
        try:
            walk(json.loads(script.text or ""))
        except (ValueError, RecursionError):
            continue  # broken JSON-LD is common; the page has other ways of saying it
    # A page's own article before the WebPage that wraps it.
    return sorted(out, key=lambda item: "WebPage" in str(item.get("@type")))


def published_candidates(doc, ld: list[dict]) -> list[str]:
    """Publication dates the markup states, best first: JSON-LD, <meta>, itemprop, <time>."""
    values = [str(item[key]) for item in ld for key in ("datePublished", "dateCreated")
              if isinstance(item.get(key), (str, int))]
    values += _meta(doc, PUBLISHED_META)
    for node in doc.xpath("//*[@itemprop='datePublished' or @itemprop='dateCreated']"):
        values.append(norm(node.get("content") or node.get("datetime") or node.text_content()))
    values += time_values(doc)
    return [v for v in values if v and find_date(v)]


def time_values(doc) -> list[str]:
    """The page's <time datetime> values: one marked as the publication date first (pubdate,
    class `published`), then the others in page order."""
    times = doc.xpath("//time[@datetime]")
    times.sort(key=lambda t: not (t.get("pubdate") is not None or "publish" in (t.get("class") or "")))
    return [v for v in (norm(t.get("datetime")) for t in times) if find_date(v)]


def title_candidates(doc, ld: list[dict]) -> list[str]:
    """The titles the page states for machines: JSON-LD headline, og:title and kin."""
    values = [_value(item["headline"]) for item in ld if isinstance(item.get("headline"), str)]
    return [v for v in values + _meta(doc, TITLE_META) if v]


def site_names(doc, ld: list[dict]) -> set[str]:
    names = set(_meta(doc, SITE_META))
    for item in ld:
        publisher = item.get("publisher")
        if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
            names.add(_value(publisher["name"]))
    return {n.lstrip("@") for n in names if n}


def head_title(doc) -> str:
    """The <title>: in <head>, or wherever the HTML parser put it (pages wrapped in unknown tags)."""
    for node in doc.iter("title"):
        if not any(a.tag in ("svg", "symbol") for a in node.iterancestors()):
            return norm(node.text_content())
    return ""


def strip_site(title: str, sites: set[str], *, first_part: bool = False) -> str:
    """`Headline - Site` → `Headline`: the parts that are the site's name go; with `first_part`
    (a <title>, which names the site more often than not) the first part is the headline."""
    parts = [p for p in TITLE_SEPARATORS.split(title) if p.strip()]
    if len(parts) < 2:
        return title
    lowered = {s.lower() for s in sites}
    kept = [p for p in parts if p.strip().lower() not in lowered]
    if len(kept) < len(parts):
        return _rejoin(title, kept)
    return parts[0] if first_part else title


def _rejoin(title: str, kept: list[str]) -> str:
    """The kept parts as the title wrote them (a headline may contain a separator itself)."""
    if not kept:
        return title
    start, end = title.find(kept[0]), title.rfind(kept[-1]) + len(kept[-1])
    return title[start:end].strip() if 0 <= start < end else kept[0]


def headings(doc, tags: tuple[str, ...]) -> list[str]:
    body = doc.find("body")
    root = body if body is not None else doc
    out = []
    for node in root.iter(*tags):
        text = norm(node.text_content())
        if text and len(text) <= MAX_TITLE_CHARS:
            out.append(text)
    return out


def choose_title(doc, ld: list[dict]) -> tuple[str | None, str]:
    """(the article's title, the <title>).

    A heading on the page that a stated title names is the title exactly as the
    page shows it (the <h1> before `og:title`, which often carries the site's
    name); else the stated title without the site's name.
    """
    head = head_title(doc)
    stated = title_candidates(doc, ld)
    named = [t for t in [*stated, head] if t]
    for tier in (("h1",), ("h2", "h3")):
        matches = [h for h in headings(doc, tier) if any(h in n for n in named)]
        if matches:
            return max(matches, key=len), head
    sites = site_names(doc, ld)
    for title in stated:
        return strip_site(title, sites), head
    if head:
        return strip_site(head, sites, first_part=True), head
    first = headings(doc, ("h1",))
    return (first[0] if first else None), head
