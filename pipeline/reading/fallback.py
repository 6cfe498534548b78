"""Fallback extraction: read an article page that the portal's profile can no longer read.

Portals redesign without notice. When the profile's selectors find no
title, no body container or no date, the page is read generically instead,
in three stages:

1. **Chinese news-page conventions** (this module): the metadata a reader
   sees, found by its labels (`发布时间：`, `来源：`, `责任编辑：`, `摘要：`,
   `关键词：`, ASCII or full-width colon) and positions (the title is the
   heading the `<title>` names; the date is the labelled one, else the first
   one after the title; a `<time datetime>` on the same day adds the time).
   The elements that carry metadata, the breadcrumb and the page furniture
   (navigation, share bars, comments, related lists, footers) are then
   removed, so the next stage sees the article and little else.
2. **A generic main-text extractor** picks the article text out of what is
   left. Which one was chosen by measured body F1 on the recorded pages of
   tests/files/quality (README, "When the portal changes its layout"):
   trafilatura, with `favor_precision`.
3. **Furniture lines** the extractor kept (a label line, the title again,
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
from html import escape
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import lxml.html
from lxml import etree

from pipeline.reading.dates import DATE_PATTERNS

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
           "您的位置", "您现在的位置", "所在位置", "位置", "附件下载"),
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
LINK_BLOCKS = frozenset({"div", "p", "ul", "ol", "li", "dl", "dd", "dt", "td", "tr", "table", "span", "section"})
FURNITURE_TAGS = ("script", "style", "noscript", "iframe", "form", "textarea", "select", "button", "input",
                  "nav", "aside", "footer", "header")
BREADCRUMB_WORDS = frozenset({"crumb", "crumbs", "breadcrumb", "position", "place", "location", "dqwz"})
BREADCRUMB_TEXT = re.compile(r"^\s*(?:当前位置|您的位置|您现在的位置|所在位置|位置)\s*[:：]")
HOME_LINKS = frozenset({"首页", "主页", "网站首页", "home", "Home"})
# Lines an extractor keeps that are furniture all the same.
FURNITURE_LINE = re.compile(
    r"^(?:[-—=_*·\s]*(?:END|完|分隔线)?[-—=_*·\s]*"      # separators, "- END -", "------分隔线------"
    r"|(?:【[^】]{1,8}】\s*)+"                             # 【打印本页】【关闭窗口】
    r"|(?:返回顶部|打印本页|关闭窗口|收藏本文|分享到.*)"
    r"|(?:[^|｜]{1,8}[|｜]){2,}[^|｜]{0,8}"               # 网站名 | 设为首页 | 加入收藏
    r"|.*(?:版权所有|Copyright|ICP备|ICP证|公网安备|分辨率浏览).*)$", re.I)
# Leading lines this short without punctuation are headings of page furniture (最新动态).
STRAY_HEADING_CHARS = 8
PUNCTUATION = re.compile(r"[。，,：:！？；;!?]")
BLOCK_TAGS = frozenset({"address", "article", "blockquote", "center", "dd", "div", "dl", "dt", "figcaption",
                        "figure", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "li", "main", "ol",
                        "p", "pre", "section", "table", "tbody", "td", "th", "thead", "tr", "ul"})
TITLE_SEPARATORS = re.compile(r"\s*(?:[_|｜]|\s[-–—]\s|&#8211;)\s*")
PUBLISHED_META = ("article:published_time", "og:release_date", "pubdate", "publishdate", "PubDate",
                  "publish_time", "weibo: article:create_at", "datePublished")
MIN_BODY_CHARS = 10


def extractor_name(engine: str | None = None) -> str:
    """`trafilatura-2.3.1`: the main-text extractor and its installed version."""
    from importlib.metadata import version

    engine = engine or DEFAULT_ENGINE
    return f"{engine}-{version(ENGINE_PACKAGES[engine])}"


def method_name(engine: str | None = None) -> str:
    """What a version records when this module read it: `fallback:trafilatura-2.3.1`."""
    return f"fallback:{extractor_name(engine)}"


# --- text helpers ----------------------------------------------------------------

_BLANKS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")


def _norm(text: str | None) -> str:
    return _BLANKS.sub(" ", text or "").strip()


def _text(node) -> str:
    return _norm("".join(node.xpath(".//text()[not(ancestor::script)][not(ancestor::style)]")))


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
    date = _find_date(text)
    if date is not None and date.start() == 0 and date.group("H") and len(text) <= DATED_LINE_CHARS:
        return True
    labels = LABEL_AT.findall(text)
    return len(labels) >= 2 or (len(labels) == 1 and _find_date(text) is not None)


def _find_date(text: str, start: int = 0):
    best = None
    for pattern in DATE_PATTERNS:
        match = pattern.search(text, start)
        if match and (best is None or match.start() < best.start()):
            best = match
    return best


def _has_block_children(node) -> bool:
    return any(isinstance(child.tag, str) and child.tag in BLOCK_TAGS and _text(child) for child in node)


# --- stage 1: metadata, then the furniture goes ---------------------------------

def _title(doc, head_title: str) -> str | None:
    """The heading the <title> names; else og:title; else the <title>'s first part."""
    head = _norm(head_title)
    candidates = [_text(h) for h in doc.xpath("//body//*[self::h1 or self::h2 or self::h3]")]
    candidates += [_norm(v) for v in doc.xpath("//meta[@property='og:title' or @name='ArticleTitle']/@content")]
    named = [c for c in candidates if c and head and c in head]
    if named:
        return max(named, key=len)
    if head:
        return TITLE_SEPARATORS.split(head)[0] or head
    h1 = next((c for c in candidates if c), None)
    return h1


def _breadcrumb_channel(node) -> str | None:
    links = [_text(a) for a in node.xpath(".//a")]
    links = [t for t in links if t and t not in HOME_LINKS]
    return links[-1] if links else None


def _time_elements(doc, tz: ZoneInfo) -> list[datetime]:
    """The page's <time datetime> moments, in the portal's zone."""
    out = []
    for value in doc.xpath("//time/@datetime"):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        out.append(moment.astimezone(tz) if moment.tzinfo is not None else moment)
    return out


def _parse_day(text: str) -> datetime | None:
    match = _find_date(text)
    if not match:
        return None
    parts = {k: int(v) for k, v in match.groupdict(default="0").items()}
    try:
        return datetime(parts["y"], parts["m"], parts["d"], parts["H"], parts["M"])
    except ValueError:
        return None


def _date_after_title(doc, title: str | None) -> str | None:
    """The first date the page shows after its title (before the title when it is not shown)."""
    body = doc.find("body")
    visible = _text(body if body is not None else doc)
    at = visible.find(title) + len(title) if title and title in visible else 0
    match = _find_date(visible, at)
    return match.group(0) if match else None


def _published(doc, shown: str | None, times: list[datetime]) -> str | None:
    """The date shown (labelled, else the first after the title), else a published-time meta;
    a <time datetime> on the day shown adds the time of day the page does not show."""
    if not shown:
        metas = doc.xpath("//meta[" + " or ".join(f"@property='{m}' or @name='{m}' or @itemprop='{m}'"
                                                    for m in PUBLISHED_META) + "]/@content")
        found = next((m for m in metas if _find_date(m)), None)
        return found or (times[0].strftime("%Y-%m-%d %H:%M:%S") if times else None)
    match = _find_date(shown)
    day = _parse_day(shown)
    if day is not None and match.group("H") is None:
        for moment in times:
            if moment.date() == day.date():
                return moment.strftime("%Y-%m-%d %H:%M:%S")
    return shown


class _Reading:
    """What stage 1 found on one page."""

    def __init__(self):
        self.values: dict[str, str | list] = {}
        self.context = {"prev": None, "next": None}
        self.channel: str | None = None

    def keep(self, field: str, value):
        if field and value and field not in self.values:
            self.values[field] = value


def _read_and_prune(doc, title: str | None, base_url: str) -> _Reading:
    """Read the metadata off the page, then remove its elements and the furniture."""
    reading = _Reading()
    doomed = []

    def visit(node):
        if not isinstance(node.tag, str):
            return
        if _doomed(node, reading, title, base_url):
            doomed.append(node)
            return
        for child in node:
            visit(child)

    body = doc.find("body")
    visit(body if body is not None else doc)
    for node in doomed:
        node.drop_tree()
    return reading


def _context(node, reading: _Reading, base_url: str) -> None:
    """上一篇 / 下一篇 links, paired in the order the labels and links appear."""
    keys = ["prev" if label == "上一篇" else "next" for label, _ in meta_values(_spaced_text(node))
            if LABEL_FIELD.get(label) == "context"]
    for key, a in zip(keys, node.xpath(".//a[@href]")):
        if reading.context[key] is None:
            reading.context[key] = {"url": urljoin(base_url, a.get("href").strip()), "title": _text(a)}


def _doomed(node, reading: _Reading, title: str | None, base_url: str) -> bool:
    """Whether the element is metadata or furniture; what it says is kept in `reading`.

    The order matters: a breadcrumb is read before navigation goes, and a
    metadata line is read before a furniture class (`news-meta`, `tags`)
    would remove it unread.
    """
    words = _words(node)
    text = _text(node)
    if node.tag in ("body", "html"):
        return False
    if text and (words & BREADCRUMB_WORDS or BREADCRUMB_TEXT.match(text)) and not _has_block_children(node):
        reading.channel = reading.channel or _breadcrumb_channel(node)
        return True
    if node.tag in FURNITURE_TAGS:
        return True
    if not text:
        return False
    if node.tag == "table" and _metadata_table(node):
        return True
    blocks = _has_block_children(node)
    spaced = _spaced_text(node)
    if not blocks and is_meta_line(spaced):
        _read_meta_line(node, spaced, reading, base_url)
        return True
    if words & FURNITURE_WORDS:
        _read_furniture(node, reading, base_url)
        return True
    if title and text == title:
        return True
    if len(node) == 0 and len(text) <= 40:
        for word in words & CLASS_FIELDS.keys():
            reading.keep(CLASS_FIELDS[word], text)
    return _only_links(node, text)


def _read_furniture(node, reading: _Reading, base_url: str) -> None:
    """Prev/next links and tags inside a pager or tag box; nothing else furniture says is kept."""
    for child in node.iter():
        if not isinstance(child.tag, str) or _has_block_children(child):
            continue
        text = _spaced_text(child)
        label = LABEL_START.match(text)
        if label and LABEL_FIELD.get(label["label"]) in ("context", "tags"):
            _read_meta_line(child, text, reading, base_url)


def _spaced_text(node) -> str:
    """The element's text with a blank where elements meet: `<span>时间：…</span><span>来源：…</span>`."""
    return _norm(" ".join(node.xpath(".//text()[not(ancestor::script)][not(ancestor::style)]")))


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


def _read_meta_line(node, text: str, reading: _Reading, base_url: str) -> None:
    for label, value in meta_values(text):
        field = LABEL_FIELD.get(label)
        if field == "tags":
            links = [_text(a) for a in node.xpath(".//a")]
            reading.keep("tags", [t for t in links if t] or value)
        elif field == "context":
            _context(node, reading, base_url)
        elif field == "published":
            reading.keep("published", f"{label}：{value}")
        elif field:
            reading.keep(field, value)
    if not LABEL_START.match(text) and _find_date(text):
        reading.keep("published", text)  # a meta line led by its date: 2025-04-18 15:20 来源：…


# --- stage 2: the main text -----------------------------------------------------

def _paragraph_leaves(doc) -> None:
    """Leaf <section>s and <div>s holding text become <p>: editors (WeChat's among them) write
    paragraphs that way, and the extractor would otherwise run them together."""
    for node in doc.iter("section", "div"):
        if not _has_block_children(node) and _text(node):
            node.tag = "p"


def _trafilatura(doc) -> etree._Element | None:
    import trafilatura

    html = trafilatura.extract(doc, output_format="html", favor_precision=True, include_comments=False,
                               include_tables=True, include_links=False, include_images=False,
                               deduplicate=False)
    return _fragment(html)


def _whole_page(doc) -> etree._Element | None:
    """No extractor: what stage 1 left of the page (the baseline of the comparison)."""
    body = doc.find("body")
    return body if body is not None else doc


def _fragment(html: str | None) -> etree._Element | None:
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


def _main_text(doc, engine: str) -> etree._Element | None:
    _paragraph_leaves(doc)
    return ENGINES[engine](doc)


# --- stage 3: paragraphs, furniture lines out -----------------------------------

def paragraphs_of(node) -> list[str]:
    """Paragraph texts in reading order: cut at block boundaries and <br>s."""
    out: list[str] = []
    current: list[str] = []

    def cut():
        text = _norm("".join(current))
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


def _body(paragraphs: list[str], title: str | None, lede: str | None) -> list[str]:
    kept = []
    for text in paragraphs:
        if text in (title, lede) or FURNITURE_LINE.match(text) or is_meta_line(text):
            continue
        if not kept and len(text) <= STRAY_HEADING_CHARS and not PUNCTUATION.search(text):
            continue
        kept.append(text)
    return kept


# --- the whole cascade ------------------------------------------------------------

def extract_fallback(text: str, url: str, tz: str = "Asia/Shanghai", engine: str | None = None) -> dict:
    """The article page's fields, read without a profile; keys as pipeline.reading.extract.extract_article."""
    engine = engine or DEFAULT_ENGINE
    doc = lxml.html.document_fromstring(text)
    head_title = _norm(" ".join(doc.xpath("//head/title//text()")))
    canonical = doc.xpath("//link[@rel='canonical']/@href")
    title = _title(doc, head_title)
    # Read before stage 1 removes the furniture: a date or <time> may sit in a header or meta block.
    unlabelled, times = _date_after_title(doc, title), _time_elements(doc, ZoneInfo(tz))
    reading = _read_and_prune(doc, title, url)
    labelled = reading.values.get("published")
    published = _published(doc, labelled if labelled and _find_date(labelled) else unlabelled, times)
    lede = reading.values.get("lede")
    main = _main_text(doc, engine)
    paragraphs = _body(paragraphs_of(main), title, lede) if main is not None else []
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
