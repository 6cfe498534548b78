"""Fallback extraction: read an article page that the portal's profile can no longer read.

Portals redesign without notice. When the profile's selectors find no
title, no body container or no date, the page is read generically instead,
standing on the field's libraries, with the portal's own conventions on top:

1. **What the page states in markup** (pipeline.reading.page_meta): JSON-LD,
   Open Graph, `itemprop`, `<time>`. The title is the heading (`<h1>` first)
   that a stated title or the `<title>` names, else the stated title without
   the site's name.
2. **Chinese news-page conventions** (this module): the metadata a reader
   sees, found by its labels (`发布时间：`, `来源：`, `责任编辑：`, `导语：`,
   `关键词：`, ASCII or full-width colon). A labelled date wins (it is what the
   reader sees); then the markup's date; then the first date shown after
   the title; then htmldate's search of the whole page. The elements that
   carry metadata, the breadcrumb and the page furniture (navigation, share
   bars, related lists, footers) are removed, except that nothing holding
   the article's text is ever removed: the element with the most paragraph
   text and its ancestors stay, whatever their tag or class
   (`<form id="aspnetForm">`, `content-with-sidebar`, `l-article-body-segment`).
3. **trafilatura's full cascade** with its defaults (its own extraction,
   then readability and jusText where it finds too little) picks the
   article text out of what is left. `favor_precision` is not used: it
   returns nothing on pages where the defaults return the article.
4. **Furniture lines** the extractor kept (a label line, the title again,
   the lede again, `【打印】【关闭】`, `- END -`) are dropped and the text is
   cut into paragraphs at block boundaries and `<br>`s.

A page where nothing is left is a page without a body: the cleaning stage
quarantines it as it would a profile-read page. The fields come out in the
profile's shape (labels already stripped), so cleaning treats them the same
way; `extraction` names the extractor and its version.
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from html import escape
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from pipeline.reading.dates import DateParseError, find_date, parse_portal_date
from pipeline.reading.page_meta import choose_title, json_ld, norm, published_candidates, time_values

# --- heuristics as data ---------------------------------------------------------

# Labels that start a piece of page metadata, by the field they fill (None:
# furniture, recognised so that it is removed, never kept). Longest first in
# the pattern, so 责任编辑 wins over 编辑.
LABELS: dict[str | None, tuple[str, ...]] = {
    "published": ("发布时间", "发布日期", "发表时间", "发表日期", "更新时间", "时间", "日期", "发布于", "发表于"),
    "source": ("来源", "信息来源", "文章来源", "稿件来源", "新闻来源"),
    "editor": ("责任编辑", "编辑", "责编"),
    "lede": ("摘要", "导语", "内容提要", "核心提示", "提要"),
    "tags": ("关键词", "关键字", "文章关键词", "标签", "Tags", "TAG"),
    "context": ("上一篇", "下一篇"),
    None: ("作者", "发布者", "发布人", "发布机构", "点击", "点击数", "点击量", "阅读", "阅读量", "阅读数",
           "浏览", "浏览次数", "浏览量", "评论", "字号", "分享到", "分享", "打印", "编审", "审核", "当前位置",
           "您的位置", "您现在的位置", "所在位置", "位置", "附件下载",
           "今天是", "主办单位", "承办单位", "网站标识码"),  # a government site's header and footer
}
LABEL_FIELD = {label: key for key, labels in LABELS.items() for label in labels}
_ALTERNATION = "|".join(sorted(map(re.escape, LABEL_FIELD), key=len, reverse=True))
COLON = r"\s*[:：]"
# A label where a piece of metadata starts: at the start, or after a blank or a separator
# (not after "(": `(来源:人民网)` closing a paragraph is the article's own credit).
LABEL_AT = re.compile(rf"(?:^|(?<=[\s|｜│/]))[\[【（(]?(?P<label>{_ALTERNATION}){COLON}")
LABEL_START = re.compile(rf"^[\[【（(]?\s*(?P<label>{_ALTERNATION}){COLON}")
# Metadata lines are short; a label inside a longer text is the article speaking.
META_LINE_CHARS = 160
# A line led by a date and a time (`2025年05月07日 10:35 经济日报`) is metadata up to this length.
DATED_LINE_CHARS = 60
# Page furniture by class or id, matched as whole words of the attribute.
FURNITURE_WORDS = frozenset({
    "share", "comment", "comments", "related", "relate", "xg", "footer", "foot", "nav", "navigation",
    "menu", "crumb", "crumbs", "breadcrumb", "position", "place", "location", "pager", "pagination",
    "keywords", "tags", "hot", "recommend", "sidebar", "toolbar", "print", "copyright", "ad", "ads",
    "advert", "login", "qr", "qrcode", "dqwz",
})
# Elements whose class names the field (`<a class="source">经济日报</a>`), read when unlabelled.
CLASS_FIELDS = {"source": "source", "editor": "editor"}
CLASS_FIELD_CHARS = 40
LINK_BLOCKS = frozenset({"div", "p", "ul", "ol", "li", "dl", "dd", "dt", "td", "tr", "table", "span", "section"})
FURNITURE_TAGS = ("script", "style", "noscript", "iframe", "form", "textarea", "select", "button", "input",
                  "nav", "aside", "footer", "header")
BREADCRUMB_WORDS = frozenset({"crumb", "crumbs", "breadcrumb", "position", "place", "location", "dqwz"})
BREADCRUMB_TEXT = re.compile(r"^\s*(?:当前位置|您的位置|您现在的位置|所在位置|位置)\s*[:：]")
HOME_LINKS = frozenset({"首页", "主页", "网站首页", "home", "Home"})
# Lines an extractor keeps that are furniture all the same.
FURNITURE_LINE = re.compile(
    r"^(?:[-—=_*·\s]*(?:END|完|分隔线)?[-—=_*·\s]*"      # separators, "- END -", "------分隔线------"
    r"|[\W_]*"                                             # no word at all: 【 】【 | ( )
    r"|(?:【[^】]{1,8}】\s*)+"                             # 【打印本页】【关闭窗口】
    r"|(?:返回顶部|打印本页|关闭窗口|收藏本文|分享到.*)"
    r"|(?:[^|｜]{1,8}[|｜]){2,}[^|｜]{0,8}"               # 网站名 | 设为首页 | 加入收藏
    # A footer line, short: a paragraph of the article may mention copyright.
    r"|.{0,60}(?:版权所有|Copyright|©|ICP备|ICP证|公网安备|分辨率浏览).{0,60})$", re.I)
# Leading lines this short without punctuation are headings of page furniture (最新动态).
STRAY_HEADING_CHARS = 8
# When the extractor returned the whole page, trailing lines this short are its footer.
TRAILING_FURNITURE_CHARS = 12
PUNCTUATION = re.compile(r"[。，,：:！？；;!?]")
BLOCK_TAGS = frozenset({"address", "article", "blockquote", "center", "dd", "div", "dl", "dt", "figcaption",
                        "figure", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "li", "main", "ol",
                        "p", "pre", "section", "table", "tbody", "td", "th", "thead", "tr", "ul"})
MIN_BODY_CHARS = 10


# Where the article is: the element with the most text in paragraphs of its own (at least
# ARTICLE_PARAGRAPHS of them: a related list gives each item one paragraph). It, its ancestors, and
# any element with ARTICLE_SHARE of its paragraph text (an article in segments) are never furniture.
ARTICLE_PARAGRAPHS = 2
ARTICLE_SHARE = 0.25
PARAGRAPH_TAGS = ("p", "pre", "blockquote")


def extractor_name(engine: str | None = None) -> str:
    """`trafilatura-2.3.1`: the main-text extractor and its installed version."""
    engine = engine or DEFAULT_ENGINE
    return f"{engine}-{_installed(ENGINE_PACKAGES[engine])}"


@cache
def _installed(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def method_name(engine: str | None = None) -> str:
    """What a version records when this module read it: `fallback:trafilatura-2.3.1`."""
    return f"fallback:{extractor_name(engine)}"


# --- text helpers ----------------------------------------------------------------

SKIPPED = ("script", "style", "noscript", "template")


def _text(node) -> str:
    return norm(node.text_content())


def _spaced_text(node) -> str:
    """The element's text with a blank where elements meet: `<span>时间：…</span><span>来源：…</span>`."""
    return norm(" ".join(node.itertext()))


def _words(node) -> set[str]:
    value = f"{node.get('class', '')} {node.get('id', '')}".lower()
    return {w for part in value.split() for w in re.split(r"[-_]+", part) if w}


def meta_values(text: str) -> list[tuple[str, str]]:
    """[(label, value)] of a metadata line: each value runs to the next label."""
    found = list(LABEL_AT.finditer(text))
    out = []
    for match, following in zip(found, found[1:] + [None]):
        value = text[match.end():following.start() if following else len(text)]
        out.append((match["label"], value.strip(" \u3000|｜│)）]】")))
    return out


def is_meta_line(text: str) -> bool:
    """A line of page metadata: led by a label, or short with labels, or led by a date and a time.

    A date alone (`2025年1月10日` under a notice) is the article's own line.
    """
    if LABEL_START.match(text):
        return True
    if len(text) > META_LINE_CHARS:
        return False
    date = find_date(text)
    if date is not None and date.start() == 0 and date.group("H") and len(text) <= DATED_LINE_CHARS:
        return True
    labels = LABEL_AT.findall(text)
    return len(labels) >= 2 or (len(labels) == 1 and date is not None)


class _Lengths:
    """Text length of every element, counted once bottom-up: the rules ask an element's size
    many times, and re-reading its text each time costs size × depth."""

    def __init__(self, root):
        self.chars: dict = {}
        for node in reversed(list(root.iter())):
            if not isinstance(node.tag, str) or node.tag in SKIPPED:
                self.chars[node] = 0
                continue
            self.chars[node] = len((node.text or "").strip()) + sum(
                self.chars.get(child, 0) + len((child.tail or "").strip()) for child in node)

    def __getitem__(self, node) -> int:
        return self.chars.get(node, 0)

    def has_block_children(self, node) -> bool:
        return any(isinstance(child.tag, str) and child.tag in BLOCK_TAGS and self[child] for child in node)


def _article_guard(root, lengths: _Lengths) -> set:
    """The elements that hold the article: furniture removal never touches them, so a page
    wrapped in a <form> or a `content-with-sidebar` is still read as an article."""
    chars: dict = {}
    count: dict = {}
    for para in root.iter(*PARAGRAPH_TAGS):
        parent = para.getparent()
        if parent is not None and lengths[para]:
            chars[parent] = chars.get(parent, 0) + lengths[para]
            count[parent] = count.get(parent, 0) + 1
    holders = {parent: size for parent, size in chars.items() if count[parent] >= ARTICLE_PARAGRAPHS}
    if not holders:
        return set()
    most = max(holders.values())
    protected = set()
    for holder, size in holders.items():
        if size >= ARTICLE_SHARE * most:
            protected.add(holder)
            protected.update(holder.iterancestors())
    return protected


# --- stage 2: metadata by label, then the furniture goes --------------------------

def _breadcrumb_channel(node) -> str | None:
    links = [_text(a) for a in node.xpath(".//a")]
    links = [t for t in links if t and t not in HOME_LINKS]
    return links[-1] if links else None


class _Reading:
    """What stage 2 found on one page."""

    def __init__(self, title: str | None, base_url: str, lengths: _Lengths, protected: set):
        self.values: dict[str, str | list] = {}
        self.context = {"prev": None, "next": None}
        self.channel: str | None = None
        self.title, self.base_url, self.lengths = title, base_url, lengths
        self.protected = protected

    def keep(self, field: str, value):
        if field and value and field not in self.values:
            self.values[field] = value

    def holds_article(self, node) -> bool:
        return node in self.protected


def _read_and_prune(doc, reading: _Reading) -> None:
    """Read the metadata off the page, then remove its elements and the furniture."""
    doomed = []

    def visit(node):
        if not isinstance(node.tag, str):
            return
        if _doomed(node, reading):
            doomed.append(node)
            return
        if not reading.lengths.has_block_children(node) and reading.lengths[node]:
            # Running text (a paragraph, a line): its links and spans are the text's own, never furniture.
            _read_class_fields(node, reading)
            return
        for child in node:
            visit(child)

    body = doc.find("body")
    visit(body if body is not None else doc)
    for node in doomed:
        node.drop_tree()


def _context(node, reading: _Reading) -> None:
    """上一篇 / 下一篇 links, paired in the order the labels and links appear."""
    keys = ["prev" if label == "上一篇" else "next" for label, _ in meta_values(_spaced_text(node))
            if LABEL_FIELD.get(label) == "context"]
    for key, a in zip(keys, node.xpath(".//a[@href]")):
        if reading.context[key] is None:
            reading.context[key] = {"url": urljoin(reading.base_url, a.get("href").strip()), "title": _text(a)}


def _doomed(node, reading: _Reading) -> bool:
    """Whether the element is metadata or furniture; what it says is kept in `reading`.

    The order matters: a breadcrumb is read before navigation goes, and a
    metadata line is read before a furniture class (`news-meta`, `tags`)
    would remove it unread. An element holding the article is never doomed.
    """
    if node.tag in ("body", "html"):
        return False
    size = reading.lengths[node]
    if reading.holds_article(node) or _is_title(node, size, reading.title):
        return False
    words = _words(node)
    blocks = reading.lengths.has_block_children(node)
    short = size <= META_LINE_CHARS * 2
    if size and short and not blocks and (words & BREADCRUMB_WORDS or BREADCRUMB_TEXT.match(_text(node))):
        reading.channel = reading.channel or _breadcrumb_channel(node)
        return True
    if node.tag in FURNITURE_TAGS:
        return True
    if not size:
        return False
    if node.tag == "table" and _metadata_table(node):
        return True
    if short and not blocks:
        spaced = _spaced_text(node)
        if is_meta_line(spaced):
            _read_meta_line(node, spaced, reading)
            return True
    if words & FURNITURE_WORDS:
        _read_furniture(node, reading)
        return True
    if not short:
        return False
    return _only_links(node, _text(node))


def _read_class_fields(node, reading: _Reading) -> None:
    """Unlabelled fields named by their element's class (`<a class="source">经济日报</a>`)."""
    for child in node.iter():
        if isinstance(child.tag, str) and len(child) == 0 and 0 < reading.lengths[child] <= CLASS_FIELD_CHARS:
            for word in _words(child) & CLASS_FIELDS.keys():
                reading.keep(CLASS_FIELDS[word], _text(child))


def _is_title(node, size: int, title: str | None) -> bool:
    """The title's own element (a linked heading, a header holding only it) stays: trafilatura
    finds the article from its heading, and without it returned only the <title> on some real
    pages; stage 4 drops the title line from the text."""
    return bool(title) and size <= len(title) + 2 and _text(node) == title


def _read_furniture(node, reading: _Reading) -> None:
    """Prev/next links and tags inside a pager or tag box; nothing else furniture says is kept."""
    for child in node.iter():
        if not isinstance(child.tag, str) or reading.lengths.has_block_children(child) \
                or reading.lengths[child] > META_LINE_CHARS:
            continue
        text = _spaced_text(child)
        label = LABEL_START.match(text)
        if label and LABEL_FIELD.get(label["label"]) in ("context", "tags"):
            _read_meta_line(child, text, reading)


def _metadata_table(table) -> bool:
    """A table of `label：` cells and values (government sites' 索引号 / 发布机构 / 生成日期 grid)."""
    cells = [_text(td) for td in table.xpath(".//td | .//th")]
    labels = [c for c in cells if c.endswith((":", "："))]
    return len(cells) >= 4 and len(labels) * 2 >= len(cells) - 1


def _only_links(node, text: str) -> bool:
    """Navigation, hot lists and related items: blocks whose whole text is link text."""
    if node.tag not in LINK_BLOCKS:
        return False
    links = "".join(_text(a) for a in node.xpath(".//a"))
    strip = lambda t: re.sub(r"[\s|｜·>›»\-]+", "", t)  # noqa: E731
    return bool(links) and strip(links) == strip(text)


def _read_meta_line(node, text: str, reading: _Reading) -> None:
    for label, value in meta_values(text):
        field = LABEL_FIELD.get(label)
        if field == "tags":
            links = [_text(a) for a in node.xpath(".//a")]
            reading.keep("tags", [t for t in links if t] or value)
        elif field == "context":
            _context(node, reading)
        elif field == "published":
            reading.keep("published", f"{label}：{value}")
        elif field:
            reading.keep(field, value)
    if not LABEL_START.match(text) and find_date(text):
        reading.keep("published", text)  # a meta line led by its date: 2025-04-18 15:20 来源：…


# --- the date ---------------------------------------------------------------------

def _date_after_title(doc, title: str | None) -> str | None:
    """The first date the page shows after its title (before the title when it is not shown)."""
    body = doc.find("body")
    visible = _text(body if body is not None else doc)
    at = visible.find(title) + len(title) if title and title in visible else 0
    match = find_date(visible, at)
    return match.group(0) if match else None


def _moment(value: str, tz: str) -> datetime | None:
    try:
        return parse_portal_date(value, tz)
    except DateParseError:
        return None


def _published(labelled: str | None, stated: list[str], times: list[str], shown: str | None, text: str,
               tz: str) -> str | None:
    """The publication date as the page gives it (its own offset kept).

    A labelled date is what the reader sees; a <time datetime> on the same
    day (in its own offset or the portal's) adds the time of day the label
    does not show.
    Without a label: the markup's date, the first date shown after the
    title, else htmldate's search of the whole page (dates in words,
    `October 17, 2018`, `17.10.2018`, the URL).
    """
    if labelled and (label_date := find_date(labelled)):
        day = _moment(labelled, tz)
        if day is not None and label_date.group("H") is None:
            for value in times:
                moment = _moment(value, tz)
                if moment is not None and find_date(value).group("H") and day.date() in (
                        moment.date(), moment.astimezone(day.tzinfo).date()):
                    return value
        return labelled
    for value in stated:
        if _moment(value, tz) is not None:
            return value
    if shown:
        return shown
    return _htmldate(text)


def _htmldate(text: str) -> str | None:
    """htmldate's reading of the whole page (the document as fetched, not what stage 2 left):
    its quick search first, its extensive one (dates in running text) only when that finds none."""
    from htmldate import find_date as search_date

    for extensive in (False, True):
        try:
            found = search_date(lxml.html.document_fromstring(text), extensive_search=extensive,
                                original_date=True, outputformat="%Y-%m-%d")
        except (ValueError, TypeError):
            found = None
        if found:
            return found
    return None


# --- stage 3: the main text -------------------------------------------------------

def _paragraph_leaves(doc, lengths: _Lengths) -> None:
    """Leaf <section>s and <div>s holding text become <p>: editors (WeChat's among them) write
    paragraphs that way, and the extractor would otherwise run them together."""
    for node in doc.iter("section", "div"):
        if lengths[node] and not lengths.has_block_children(node):
            node.tag = "p"


def _trafilatura(doc):
    import trafilatura

    html = trafilatura.extract(doc, output_format="html", include_comments=False, include_links=False,
                               include_images=False)
    return _fragment(html)


def _whole_page(doc):
    """No extractor: what stage 2 left of the page (the baseline of the comparison)."""
    body = doc.find("body")
    return body if body is not None else doc


def _fragment(html: str | None):
    if not html or not html.strip():
        return None
    fragment = lxml.html.fromstring(html)
    body = fragment.find("body")
    return body if body is not None else fragment


# The extractor the archive uses, and the no-extractor baseline; tests/files/quality/compare_extractors.py
# adds the candidates the archive does not depend on, to measure them in the same cascade.
ENGINES = {"trafilatura": _trafilatura, "none": _whole_page}
DEFAULT_ENGINE = "trafilatura"
ENGINE_PACKAGES = {"trafilatura": "trafilatura", "none": "portal-archive"}


# --- stage 3: paragraphs, furniture lines out -----------------------------------

def paragraphs_of(node) -> list[str]:
    """Paragraph texts in reading order: cut at block boundaries, <br>s and line breaks."""
    out: list[str] = []
    current: list[str] = []

    def cut():
        # A line break inside a text is a paragraph's end too: trafilatura's last resort (its
        # baseline) returns the page's text as one <p> with a line per block.
        for line in "".join(current).split("\n"):
            text = norm(line)
            if text:
                out.append(text)
        current.clear()

    def walk(el):
        if not isinstance(el.tag, str) or el.tag in ("script", "style"):
            if el.tail:
                current.append(el.tail)
            return
        block = el.tag in BLOCK_TAGS
        if block or el.tag == "br":
            cut()
        if el.text:
            current.append(el.text)
        for child in el:
            walk(child)
        if block:
            cut()
        if el.tail:
            current.append(el.tail)

    if node.text:
        current.append(node.text)
    for child in node:
        walk(child)
    cut()
    return out


def _only_a_date(text: str) -> bool:
    match = find_date(text)
    return match is not None and match.start() == 0 and len(text) - match.end() <= 2


def _dateline(text: str) -> bool:
    """A line before the text that is a date, or short and holds a date with its time of day
    (`原创 能源观察 2024-12-28 20:15`)."""
    match = find_date(text)
    return match is not None and (_only_a_date(text) or len(text) <= DATED_LINE_CHARS and bool(match.group("H")))


def _whole_page_text(main) -> bool:
    """Whether the extractor gave up and returned the page's text (trafilatura's baseline, its
    last resort: one <p>, a line per block), furniture at both ends included."""
    return main is not None and len(main) == 1 and main[0].tag == "p" and "\n" in (main[0].text or "")


def _trailing_furniture(paragraphs: list[str]) -> list[str]:
    """Without the short lines that end a whole page (相关阅读, 联系我们, Powered by); a date
    alone is the article's signature and stays."""
    kept = list(paragraphs)
    while kept and len(kept[-1]) <= TRAILING_FURNITURE_CHARS and not _only_a_date(kept[-1]):
        kept.pop()
    return kept


def _body(paragraphs: list[str], title: str | None, lede: str | None) -> list[str]:
    kept = []
    for text in paragraphs:
        if text in (title, lede) or FURNITURE_LINE.match(text) or is_meta_line(text):
            continue
        if not kept and len(text) <= STRAY_HEADING_CHARS and not PUNCTUATION.search(text):
            continue
        if not kept and _dateline(text):
            continue  # the dateline under the title; a date after the text is the article's own
        kept.append(text)
    return kept


# --- the whole cascade ------------------------------------------------------------

def extract_fallback(text: str, url: str, tz: str = "Asia/Shanghai", engine: str | None = None) -> dict:
    """The article page's fields, read without a profile; keys as pipeline.reading.extract.extract_article."""
    engine = engine or DEFAULT_ENGINE
    doc = lxml.html.document_fromstring(text)
    ld = json_ld(doc)
    # Scripts and styles hold no text a reader sees (JSON-LD is read above); gone, text is text.
    etree.strip_elements(doc, *SKIPPED, etree.Comment, with_tail=False)
    title, head_title = choose_title(doc, ld)
    canonical = doc.xpath("//link[@rel='canonical']/@href")
    # Read before stage 2 removes the furniture: a date may sit in a header or a meta block.
    stated, times, shown = published_candidates(doc, ld), time_values(doc), _date_after_title(doc, title)
    body = doc.find("body")
    root = body if body is not None else doc
    lengths = _Lengths(root)
    _paragraph_leaves(root, lengths)
    reading = _Reading(title, url, lengths, _article_guard(root, lengths))
    _read_and_prune(doc, reading)
    published = _published(reading.values.get("published"), stated, times, shown, text, tz)
    lede = reading.values.get("lede")
    main = ENGINES[engine](doc)
    paragraphs = _body(paragraphs_of(main), title, lede) if main is not None else []
    if _whole_page_text(main):
        paragraphs = _trailing_furniture(paragraphs)
    body_html = "".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs)
    if sum(len(p) for p in paragraphs) < MIN_BODY_CHARS:
        body_html = None
    return {
        "title": title,
        "head_title": head_title or None,
        "published": published,
        "lede": lede,
        "body_html": body_html,
        "editor": reading.values.get("editor"),
        "source": reading.values.get("source"),
        "tags": reading.values.get("tags"),
        "channel": reading.channel,
        "canonical": urljoin(url, canonical[0].strip()) if canonical else None,
        "context": reading.context,
        "related": [],
        "extraction": method_name(engine),
    }
