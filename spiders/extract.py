"""Read an article page's fields with the profile's selectors.

The values stay as the page shows them (labels, indents, markup); turning
them into archive values is the cleaning stage's job, so a cleaning fix can
be replayed over stored pages without re-reading the portal.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin

from parsel import Selector

from spiders.profile import Profile

VISIBLE_TEXT = ".//text()[not(ancestor::script)][not(ancestor::style)]"
# libxml2 stops reading a document nested deeper than about this (the rest of
# the page is silently dropped); the portal's editor has been seen wrapping a
# body in thousands of bare <div><span> levels.
MAX_NESTING = 255
# Long runs of bare wrapper tags, opening or closing: removed, they leave the page's real structure.
WRAPPER_RUN = re.compile(r"(?:<(?:div|span|font)\s*>\s*){16,}|(?:</(?:div|span|font)\s*>\s*){16,}", re.I)
WRAPPER_TAG = re.compile(r"<(/?)(?:div|span|font)\b[^>]*>", re.I)


def nesting_depth(html: str) -> int:
    depth = deepest = 0
    for match in WRAPPER_TAG.finditer(html):
        depth += -1 if match[1] else 1
        deepest = max(deepest, depth)
    return deepest


def visible_text(node) -> str:
    return "".join(node.xpath(VISIBLE_TEXT).getall())


def first_text(doc: Selector, selectors: list[str] | str) -> str | None:
    """Visible text of the first selector that matches something non-blank."""
    for css in [selectors] if isinstance(selectors, str) else selectors:
        for node in doc.css(css):
            text = visible_text(node)
            if text.strip():
                return text
    return None


def first_node(doc: Selector, selectors: list[str]):
    for css in selectors:
        found = doc.css(css)
        if found:
            return found[0]
    return None


def inner_html(node) -> str:
    return "".join(node.xpath("node()").getall())


def extract_article(profile: Profile, text: str, url: str) -> dict:
    """The article page's raw fields, keyed as the cleaning stage expects."""
    fields = _extract(profile, Selector(text=text), url)
    body = fields["body_html"]
    if (body is None or "<p" not in body) and nesting_depth(text) > MAX_NESTING:
        # Bare wrappers carry no meaning; without them the parser reads the whole page.
        fields = _extract(profile, Selector(text=WRAPPER_RUN.sub("", text)), url)
        fields["flattened"] = True
    return fields


def _extract(profile: Profile, doc: Selector, url: str) -> dict:
    rules = profile.article
    body = first_node(doc, rules["body"])
    canonical = doc.css(rules["canonical"]).get()
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
        "canonical": urljoin(url, canonical.strip()) if canonical else None,
        "context": _context(doc, rules["context_links"], url),
        "related": _related(doc, rules, url),
    }


def _tags(doc: Selector, selectors: list[str]) -> list[str] | str | None:
    """Tag link texts when the tags are links, else the container's text (label and all)."""
    links, container = selectors[0], selectors[1]
    found = [visible_text(a) for a in doc.css(links)]
    if found:
        return found
    return first_text(doc, container)


def _context(doc: Selector, css: str, url: str) -> dict:
    """上一篇 / 下一篇 links: the chain through the archive."""
    out = {"prev": None, "next": None}
    for li in doc.css(css):
        text = visible_text(li)
        key = "prev" if "上一篇" in text else "next" if "下一篇" in text else None
        href = li.css("a::attr(href)").get()
        if key and href:
            out[key] = {"url": urljoin(url, href.strip()), "title": visible_text(li.css("a")[0]).strip()}
    return out


def _related(doc: Selector, rules: dict, url: str) -> list[dict]:
    out = []
    for li in doc.css(rules["related_items"]):
        href = li.css(rules["related_link"]).get()
        if not href:
            continue
        title = li.css(rules["related_title"])
        summary = li.css(rules["related_summary"])
        out.append({
            "url": urljoin(url, href.strip()),
            "title": visible_text(title[0]).strip() if title else None,
            "summary": visible_text(summary[0]).strip() if summary else None,
        })
    return out


def extract_list(profile: Profile, doc: Selector, url: str) -> tuple[list[tuple[str, str]], str | None]:
    """([(article URL, date text)] on a channel list page, the next page's URL or None)."""
    rules = profile.list
    items = []
    for li in doc.css(rules["item"]):
        href = li.css(rules["item_link"]).get()
        if href:
            items.append((urljoin(url, href.strip()), visible_text(li.css(rules["item_date"])) or ""))
    next_href = None
    for css in rules["next_page"]:
        next_href = doc.css(css).get()
        if next_href:
            break
    return items, urljoin(url, next_href.strip()) if next_href else None
