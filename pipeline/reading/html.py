"""Body HTML: boilerplate out, an allow-list of safe markup kept, paragraphs read from it."""
from __future__ import annotations

import re

import nh3
from lxml import etree
from parsel import Selector
from parsel.csstranslator import css2xpath as css_to_xpath

from pipeline.reading.extract import inner_html
from pipeline.reading.text import ZERO_WIDTH, normalize_inline

# Things that sit inside some CMS body containers but are not the article.
BODY_BOILERPLATE = (
    "script", "style", "iframe", "form",
    ".share", ".boxoff", ".related", ".footer", ".info", ".handle", ".editor", ".source", ".tags",
)
SAFE_URL = re.compile(r"^(?:https?://|mailto:|/|#)", re.I)
ALLOWED_TAGS = {
    "p", "br", "b", "strong", "i", "em", "u", "s", "sub", "sup", "span", "a", "img",
    "ul", "ol", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "figure", "figcaption", "div",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "td": {"colspan", "rowspan"}}
BLOCK = r"(?:p|div|li|h[1-6]|td|th|blockquote|figcaption)"
PARAGRAPH_XPATH = ".//p | .//li | .//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6 | .//blockquote | .//figcaption"


def _xpath(expression: str) -> etree.XPath:
    return etree.XPath(expression, smart_strings=False)


# Compiled once and run on lxml nodes (as spiders/extract.py does): going through parsel's
# Selector API for each of a body's dozens of queries cost more than the parse itself.
_BODY_ROOT = _xpath(css_to_xpath("#body-root"))
_BOILERPLATE = _xpath(" | ".join(css_to_xpath(css) for css in BODY_BOILERPLATE))
_PARAGRAPHS = _xpath(PARAGRAPH_XPATH)
_TEXTS = _xpath(".//text()")


def strip_boilerplate(body_html: str) -> etree._Element:
    root = _BODY_ROOT(Selector(text=f"<div id='body-root'>{body_html}</div>").root)[0]
    for node in _BOILERPLATE(root):  # document order: a match inside a dropped one goes with it
        node.drop_tree()  # keeps the text that follows the node
    return root


def body_paragraphs(root: etree._Element) -> list[str]:
    """Paragraph texts in reading order; text outside any paragraph counts as its own paragraph."""
    blocks = _PARAGRAPHS(root)
    if not blocks:
        text = "\n".join(_TEXTS(root))
        return [p for p in (normalize_inline(line) for line in re.split(r"\n+", text)) if p]
    out = []
    for block in blocks:
        # Nested blocks (a <p> inside <li>) are read once, at the innermost level.
        if _PARAGRAPHS(block):
            continue
        text = normalize_inline("".join(_TEXTS(block)))
        if text:
            out.append(text)
    return out


def _safe_urls_only(tag: str, attribute: str, value: str) -> str | None:
    """Keep link and image URLs only when absolute http(s)/mailto or site-relative: a relative
    oddity like `java%0Ascript:` is inert but means nothing worth keeping."""
    if attribute in ("href", "src") and not SAFE_URL.match(value.strip()):
        return None
    return value


def sanitize_body_html(html: str) -> str:
    """Safe, whitespace-normalized HTML: no scripts, handlers, frames or javascript: URLs."""
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=_safe_urls_only,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
    )
    clean = ZERO_WIDTH.sub("", clean).replace("&nbsp;", " ").replace("\u00a0", " ")
    clean = re.sub(rf"(<{BLOCK}\b[^>]*>)[\s\u3000]+", r"\1", clean)
    clean = re.sub(rf"[\s\u3000]+(</{BLOCK}>)", r"\1", clean)
    clean = re.sub(rf"<({BLOCK})\b[^>]*>\s*</\1>", "", clean)
    clean = re.sub(r"\s*\n\s*", "\n", clean)
    return clean.strip()


def clean_body(body_html: str) -> tuple[str, str]:
    """(sanitized body HTML, plain text with paragraphs joined by newlines)."""
    root = strip_boilerplate(body_html)
    paragraphs = body_paragraphs(root)
    return sanitize_body_html(inner_html(root)), "\n".join(paragraphs)
