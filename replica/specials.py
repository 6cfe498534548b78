"""Special articles: hostile markup, a huge page, pathologically nested markup.

The state keeps a special article as ordinary text (title, lede, paragraphs
hold exactly what a reader sees), so the ground truth stays plain data; the
markup that makes the page special is added here at render time, always the
same way for the same text. Mutation rounds never pick special articles, so
their text and markup never drift apart.

Ground truth is the text a browser shows:

- hostile: script and style contents are not text; <img> and <iframe> add
  nothing; a `javascript:` link's text (链接) is text; the title and lede hold
  `<script>alert(4)</script>` / `<b>重要提示</b>` as literal characters (the
  page carries them escaped as entities). Some paragraphs are spreadsheet
  formulas (=, +, -, @) and the first paragraph always is one, so the body
  cell of a CSV export starts with one; the first hostile article's title
  starts with one too.
- huge: ~20 MB page. HUGE_PARAGRAPHS extra paragraphs of real text (about
  100 KB, all of it ground truth) plus HUGE_BLOCKS comment blocks of Word
  paste junk (`<!--[if gte mso 9]><xml>…<![endif]-->`) between paragraphs,
  which carry no text. Blocks stay below libxml2's 10 MB node limit on
  purpose: the page tests size, not that one limit.
- nested: the paragraphs sit inside NESTED_DEPTH levels of alternating
  <div>/<span> inside #article-content. libxml2 (lxml) gives up beyond 256
  levels by default and ~2,048 with huge_tree, and then returns an empty
  document: a parser that streams (html.parser, html5 parsers) reads it fine.
"""
from __future__ import annotations

from functools import lru_cache

from .state import Article
from .text import CITIES, TOPICS, TextMaker

SPECIAL_KINDS = ("hostile", "huge", "nested")

FORMULAS = ('=HYPERLINK("http://x","y")', "+1-2", "-3+4", "@SUM(A1)")
TITLE_SCRIPT = "<script>alert(4)</script>"
LEDE_MARK = "<b>重要提示</b>"
LINK_TEXT = "链接"
LINK_PARAGRAPH = "相关附件请点击链接下载。"
STYLE = "<style>.content p{color:#333}body{background:url(javascript:alert(5))}</style>\n"
SCRIPT = "<script>alert(1)</script>"
IMG = '<img src="x.png" onerror="alert(2)">'
LINK = '<a href="javascript:alert(3)">链接</a>'
IFRAME = '<iframe src="http://127.0.0.1:9/x"></iframe>\n'
ONCLICK = '<p onclick="alert(6)">'

HUGE_PAGE_BYTES = 20_000_000
HUGE_BLOCKS = 20  # 1 MB each
HUGE_PARAGRAPHS = 400
_HUGE_MARK = "@@HUGE@@"  # ASCII placeholder, swapped for a block after encoding

NESTED_DEPTH = 5000
_NEST_OPEN, _NEST_CLOSE = "<div><span>", "</span></div>"


# --- generation --------------------------------------------------------------

def dress(article: Article, kind: str, maker: TextMaker, ordinal: int, titles: set[str]) -> None:
    """Turn a generated article into special `kind`; `ordinal` counts the
    articles of that kind so far, in aid order."""
    if kind not in SPECIAL_KINDS:
        raise ValueError(f"unknown special kind {kind!r}; known: {SPECIAL_KINDS}")
    article.special = kind
    paragraphs = article.paragraphs
    if kind == "hostile":
        rng = maker.rng
        prefix = FORMULAS[0] if ordinal == 0 else ""
        # The issue number makes the title unique; no plain title has <script>.
        title = f"{prefix}{rng.choice(CITIES)}{rng.choice(TOPICS)}通报(第{ordinal + 1}期){TITLE_SCRIPT}"
        titles.discard(article.title)
        titles.add(title)
        article.title = title
        article.lede = LEDE_MARK + article.lede
        first = FORMULAS[ordinal % len(FORMULAS)]
        others = [f for f in FORMULAS if f != first]
        # The last paragraph stays last: it may carry the inner credit.
        article.paragraphs = [first, *paragraphs[:-1], *others, LINK_PARAGRAPH, paragraphs[-1]]
    elif kind == "huge":
        extra = [maker.paragraph() for _ in range(HUGE_PARAGRAPHS)]
        article.paragraphs = [*paragraphs[:-1], *extra, paragraphs[-1]]


# --- rendering ---------------------------------------------------------------

def paragraphs_html(kind: str | None, texts: list[str], paragraph: str) -> str:
    """`texts` are already escaped; `paragraph` is the layout's <p> template."""
    if kind == "hostile":
        return _hostile_html(texts, paragraph)
    html = [paragraph.format(text=p) for p in texts]
    if kind == "nested":
        pairs = NESTED_DEPTH // 2
        return _NEST_OPEN * pairs + "\n" + "".join(html) + _NEST_CLOSE * pairs + "\n"
    if kind == "huge":
        step = max(1, len(html) // HUGE_BLOCKS)
        marks = [_HUGE_MARK + "\n" if i % step == 0 and i // step < HUGE_BLOCKS else ""
                 for i in range(len(html))]
        missing = HUGE_BLOCKS - sum(1 for m in marks if m)
        return "".join(m + p for m, p in zip(marks, html)) + (_HUGE_MARK + "\n") * missing
    return "".join(html)


def _entity_safe(escaped: str, at: int) -> int:
    """Move a cut out of an entity such as &amp; so the markup stays valid."""
    amp = escaped.rfind("&", 0, at)
    return amp if amp > escaped.rfind(";", 0, at) else at


def _hostile_html(texts: list[str], paragraph: str) -> str:
    link_paragraph = LINK_PARAGRAPH  # has no characters that escaping changes
    out = [STYLE]
    for i, text in enumerate(texts):
        template = paragraph
        if text == link_paragraph:
            text = text.replace(LINK_TEXT, LINK)
        elif i == 1:
            at = _entity_safe(text, len(text) // 2)
            text = text[:at] + SCRIPT + text[at:]
            template = paragraph.replace("<p>", ONCLICK, 1)
        elif i == 2:
            text = IMG + text
        out.append(template.format(text=text))
        if i == 2:
            out.append(IFRAME)
    return "".join(out)


@lru_cache(maxsize=1)
def huge_block() -> bytes:
    """One comment block of Word paste junk, ~1 MB, ASCII, no text content."""
    head = '<!--[if gte mso 9]><xml>\n<w:LatentStyles DefLockedState="false" LatentStyleCount="267">\n'
    tail = "</w:LatentStyles>\n</xml><![endif]-->\n"
    target = HUGE_PAGE_BYTES // HUGE_BLOCKS - len(head) - len(tail)
    lines, size, n = [], 0, 0
    while size < target:
        line = f'<w:LsdException Locked="false" Priority="{n % 100}" Name="Style {n}"/>\n'
        lines.append(line)
        size += len(line)
        n += 1
    return (head + "".join(lines) + tail).encode("ascii")


def expand_huge(body: bytes) -> bytes:
    return body.replace(_HUGE_MARK.encode("ascii"), huge_block())
