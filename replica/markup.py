"""Pieces both article layouts share: escaping, the site header, link forms,
the body's paragraphs and the final encoding.

Split out of render.py so that the redesigned layout (redesign.py) can use
them without importing the reference layout.
"""
from __future__ import annotations

from html import escape

from . import specials
from . import templates as t
from .site import CHANNELS, Channel
from .state import Article

ENCODING = "gb18030"
HTML_TYPE = "text/html; charset=gb2312"
# The CMS cuts <meta name="description"> from the lede: the reference page
# carries exactly its lede's first 120 characters.
DESCRIPTION_LIMIT = 120

# Byte sequences no GB18030 decoder accepts: a lead byte with an ASCII trail
# and a byte that is never valid. Injected into `bad_bytes` articles.
BAD_SEQUENCES = (b"\x81\x20", b"\xff")
_BAD_MARK = "@@BAD{}@@"

TRACKING = ("?from=timeline", "?spm=a2c4g.11186623.0.0")


def text(value: str) -> str:
    return escape(value, quote=False)


def attr(value: str) -> str:
    return escape(value, quote=True)


def header(current: Channel | None) -> str:
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


def mark_bad(escaped: str, at: int, n: int) -> str:
    """Put bad-bytes marker `n` into escaped text; markers are ASCII so they
    survive encoding, and encode_page turns them into invalid bytes."""
    return escaped[:at] + _BAD_MARK.format(n) + escaped[at:]


def _paragraph_texts(article: Article) -> list[str]:
    texts = [text(p) for p in article.paragraphs]
    if article.defect == "bad_bytes":
        for n, at in enumerate((0, len(texts) - 1)):
            texts[at] = mark_bad(texts[at], 1 + article.aid % max(1, len(texts[at]) - 2), n)
    return texts


def body_paragraphs(article: Article, paragraph: str = t.PARAGRAPH) -> str:
    """The body's paragraphs as HTML, in `paragraph`'s markup, with the extra
    markup of special articles (specials.py)."""
    return specials.paragraphs_html(article.special, _paragraph_texts(article), paragraph)


def encode_page(page: str, *, bad: bool = False, huge: bool = False) -> bytes:
    body = page.encode(ENCODING)
    if bad:
        for n, sequence in enumerate(BAD_SEQUENCES):
            body = body.replace(_BAD_MARK.format(n).encode("ascii"), sequence)
    if huge:
        body = specials.expand_huge(body)
    return body


def encode_article(page: str, article: Article) -> bytes:
    return encode_page(page, bad=article.defect == "bad_bytes", huge=article.special == "huge")
