"""Hostile content stays inert: in the stored body HTML, and in the CSV a spreadsheet opens.

The recorded pages are the reference article (tests/files/article-12873.html,
GB18030 bytes) with hostile content added:

- article-hostile-markup.html: scripts, event handlers, javascript:/vbscript:/
  data: URLs (plain, mixed case, entity-escaped, split by blanks), frames,
  <style>, <object>/<embed>, <svg onload>, MathML and <noscript> parser
  tricks, forms, <base>/<meta refresh>, and entity-escaped script text in the
  title;
- article-hostile-formulas.html (aid 12874): title, lede, editor, source, the
  body's first paragraph and its inner credit each starting like a formula.

They go through the real extraction and cleaning, then into a real migrated
archive (SQLite, and PostgreSQL in its pass) through
pipeline.archive.versions.record_article, and out through the real `portal-archive
export`. The tests marked `archive` are those that read that archive; the
rest are about cleaning and CSV cells and need no database.
"""
import csv
import dataclasses
import io
import json
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import lxml.html
import pytest

from pipeline.archive.db import make_engine, session_scope, upgrade
from pipeline.archive.export import csv_cell
from pipeline.archive.runs import start_run
from pipeline.archive.versions import record_article
from pipeline.reading.chain import read_page
from pipeline.reading.fingerprint import fingerprint
from pipeline.reading.html import ALLOWED_ATTRIBUTES, ALLOWED_TAGS
from pipeline.reading.records import EXPORT_KEYS
from tests.conftest import cli, new_database, query

FILES = Path(__file__).parent / "files"
URL = "http://portal.test/news/djyd/2025/0507/{aid}.html"
TITLE = "部市共建北京国际科技创新中心工作会议召开,尹力要求以首善标准抓好各项任务落实"
FETCHED_AT = datetime(2026, 2, 12, 8, 0, tzinfo=timezone.utc)

# Everything that can hold a URL a browser would load or follow.
URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "data", "poster", "background", "dynsrc",
                  "lowsrc", "xlink:href", "codebase", "cite", "longdesc", "usemap", "ping", "manifest", "icon"}
ACTIVE_TAGS = {"script", "style", "iframe", "frame", "frameset", "object", "embed", "param", "applet", "svg",
               "math", "form", "input", "button", "base", "meta", "link", "noscript", "template", "video",
               "audio", "source", "details"}
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
C0_AND_SPACE = "".join(chr(i) for i in range(0x21))


def read(name: str, aid: int, profile):
    """The page read by the profile, as the crawl's reader reads it."""
    return read_page(profile, (FILES / name).read_bytes(), url=URL.format(aid=aid), aid=aid, fetched_at=FETCHED_AT,
                     headers={"Content-Type": "text/html; charset=gb2312"}, method="profile")


@pytest.fixture(scope="module")
def markup(profile):
    return read("article-hostile-markup.html", 12873, profile)


@pytest.fixture(scope="module")
def formulas(profile):
    return read("article-hostile-formulas.html", 12874, profile)


@pytest.fixture(scope="module")
def captured():
    return (FILES / "article-12873.captured.txt").read_text(encoding="utf-8").split("\n")


def url_scheme(value: str) -> str | None:
    """The scheme a browser would read (WHATWG URL: outer C0/space stripped, tabs and newlines dropped)."""
    cleaned = re.sub(r"[\t\n\r]", "", value.strip(C0_AND_SPACE))
    match = SCHEME.match(cleaned)
    return match.group(1).lower() if match else None


def assert_inert(body_html: str) -> None:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    for element in root.iter():
        assert isinstance(element.tag, str), f"comment or processing instruction: {element!r}"
        if element is root:
            continue
        assert element.tag not in ACTIVE_TAGS, element.tag
        assert element.tag in ALLOWED_TAGS, element.tag
        allowed = ALLOWED_ATTRIBUTES.get(element.tag, set()) | ({"rel"} if element.tag == "a" else set())
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name, value)
            assert name in allowed, (element.tag, name, value)
            if name in URL_ATTRIBUTES:
                for candidate in value.split(",") if name == "srcset" else [value]:
                    assert url_scheme(candidate) in (None, "http", "https", "mailto"), (element.tag, name, value)


def paragraphs_text(body_html: str) -> list[str]:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [p.text_content() for p in root.iter("p")]


# --- cleaning: the stored body HTML ------------------------------------------------------------

def test_the_hostile_page_really_carries_the_attacks():
    """The control: the attacks are in the page as fetched, so their absence below means something."""
    text = (FILES / "article-hostile-markup.html").read_bytes().decode("gb18030")
    for attack in ("<script>", "onerror=", "onclick=", "javascript:", "<iframe", "<style>", "<object",
                   "<embed", "<svg onload=", "data:text/html", "&#106;avascript:", "&lt;script&gt;",
                   "<noscript>", "<math>", "<base ", "http-equiv=\"refresh\"", "vbscript:"):
        assert attack in text, attack


def test_body_html_keeps_no_active_content(markup):
    assert_inert(markup.body_html)


def test_body_html_keeps_the_visible_text_and_the_safe_markup(markup, captured):
    root = lxml.html.fragment_fromstring(markup.body_html, create_parent="div")
    paragraphs = paragraphs_text(markup.body_html)
    assert "含事件属性的段落,脚本链接、大小写链接、实体链接、空白链接、VB链接、数据链接和正常链接。" in paragraphs
    assert "图片:图片之后的文字。" in paragraphs
    assert "带事件的文字与粗体文字,站内链接。" in paragraphs
    assert paragraphs[-7:] == captured[4:11], "the article's own paragraphs, untouched"
    hrefs = [a.get("href") for a in root.iter("a")]
    assert "http://portal.test/news/djyd/2025/0507/12872.html" in hrefs
    assert "/news/djyd/2025/0507/12871.html" in hrefs
    assert [img.get("src") for img in root.iter("img") if img.get("src")] == [
        "http://portal.test/uploads/a.jpg", "http://portal.test/uploads/b.jpg"]
    assert root.xpath("//td/text()") == ["表格文字"]


def test_body_text_is_the_visible_paragraphs(markup, captured):
    lines = markup.body_text.split("\n")
    assert lines[-7:] == captured[4:11]
    assert "含事件属性的段落,脚本链接、大小写链接、实体链接、空白链接、VB链接、数据链接和正常链接。" in lines
    for code in ("alert(", "document.write", "display: none", "脚本写入的段落", "模板段落"):
        assert code not in markup.body_text


def test_title_and_lede_keep_the_visible_text_only(markup):
    # Escaped markup in the title is text the portal shows; it is kept as that text, never as markup.
    assert markup.title == '<script>alert("title")</script>' + TITLE
    assert markup.lede.startswith("建设北京国际科技创新中心") and "alert" not in markup.lede


# --- the archive and its export ----------------------------------------------------------------

@pytest.fixture(scope="module")
def leading_blanks(formulas):
    """Values a page cannot produce (cleaning strips leading blanks) but the export must still handle."""
    item = dataclasses.replace(
        formulas, aid=12875, url=URL.format(aid=12875), page=dataclasses.replace(formulas.page, url=URL.format(aid=12875)),
        title=" =1+1 标题", lede="\t=2 导语", editor="\u3000@x", source="＋3 来源",
        body_text="\ufeff－4 正文\n第二段", body_html="<p>\ufeff－4 正文</p><p>第二段</p>", origin_source="﹦5",
        tags=["=标签"], paragraph_hashes=[])
    return fingerprint(item)


@pytest.fixture(scope="module")
def hostile_archive(request, tmp_path_factory, markup, formulas, leading_blanks):
    url = new_database(request, tmp_path_factory.mktemp("hostile"))
    upgrade(url)
    engine = make_engine(url)
    try:
        run_id = start_run(engine, "crawl", "http://portal.test", {})
        with session_scope(engine) as session:
            for item in (markup, formulas, leading_blanks):
                assert record_article(session, run_id, item)[0] == "new"
    finally:
        engine.dispose()
    return {"url": url}


@pytest.mark.archive
def test_the_stored_body_html_is_inert(hostile_archive):
    stored = [row[0] for row in query(hostile_archive["url"], "select body_html from article_versions")]
    assert len(stored) == 3
    for body_html in stored:
        assert_inert(body_html)


@pytest.mark.archive
def test_the_hostile_archive_verifies(hostile_archive):
    result = cli("verify", "--db", hostile_archive["url"], check=False)
    assert result.returncode == 0, result.stdout


def runs_as_formula(cell: str) -> bool:
    """What a spreadsheet would run: a formula sign first, after blanks and invisible characters."""
    if cell[:1] in ("\t", "\r", "\n"):
        return True
    first = next((c for c in cell if not (c.isspace() or unicodedata.category(c) == "Cf")), "")
    return first == "\u2212" or unicodedata.normalize("NFKC", first) in ("=", "+", "-", "@")


@pytest.mark.archive
@pytest.mark.parametrize("extra", [[], ["--all-versions"]], ids=["current", "all-versions"])
def test_csv_export_neutralizes_every_formula_like_cell(hostile_archive, formulas, leading_blanks, extra):
    out = cli("export", "--format", "csv", *extra, "--db", hostile_archive["url"]).stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == list(EXPORT_KEYS)
    for row in rows[1:]:
        for key, cell in zip(EXPORT_KEYS, row):
            assert not runs_as_formula(cell), (key, cell)
    by_aid = {int(r[0]): dict(zip(EXPORT_KEYS, r)) for r in rows[1:]}
    assert sorted(by_aid) == [12873, 12874, 12875]
    for item in (formulas, leading_blanks):
        row = by_aid[item.aid]
        for key, value in (("title", item.title), ("lede", item.lede), ("editor", item.editor),
                           ("source", item.source), ("body", item.body_text),
                           ("origin_source", item.origin_source)):
            assert row[key] == "'" + value, (key, row[key])
    assert by_aid[12875]["tags"] == '["=标签"]'  # a JSON list starts with "[": nothing to neutralize
    assert by_aid[12873]["title"] == '<script>alert("title")</script>' + TITLE


@pytest.mark.archive
def test_csv_export_to_a_file_is_neutralized_too(hostile_archive, tmp_path):
    target = tmp_path / "export.csv"
    cli("export", "--format", "csv", "-o", str(target), "--db", hostile_archive["url"])
    with open(target, encoding="utf-8", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert cells and not any(runs_as_formula(cell) for cell in cells)


@pytest.mark.archive
def test_json_export_keeps_the_text_exactly(hostile_archive, markup, formulas, leading_blanks):
    out = cli("export", "--db", hostile_archive["url"]).stdout
    rows = {r["aid"]: r for r in (json.loads(line) for line in out.splitlines())}
    for item in (markup, formulas, leading_blanks):
        row = rows[item.aid]
        assert (row["title"], row["lede"], row["editor"], row["source"], row["body"], row["origin_source"],
                row["tags"]) == (item.title, item.lede, item.editor, item.source, item.body_text,
                                 item.origin_source, item.tags)


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    (" =1", "' =1"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\n=1", "'\n=1"), ("\u3000=1", "'\u3000=1"),
    ("\u00a0+1", "'\u00a0+1"), ("\u200b@x", "'\u200b@x"), ("\ufeff-1", "'\ufeff-1"),
    ("\u200e=1", "'\u200e=1"), ("\u202e+1", "'\u202e+1"), ("\u00ad@x", "'\u00ad@x"),
    ("＝1", "'＝1"), ("＋1", "'＋1"), ("－1", "'－1"), ("＠x", "'＠x"), ("﹦1", "'﹦1"), ("\u22121", "'\u22121"),
    ("a=b", "a=b"), ("中国=1", "中国=1"), ("2025-05-07", "2025-05-07"), ("", ""), ("  ", "  "),
    (None, ""), (12873, "12873"), (["=x"], '["=x"]'),
])
def test_csv_cell(value, expected):
    assert csv_cell(value) == expected


@pytest.mark.parametrize("html", [
    "<p>x<script>alert(1)</script></p>", "<p onclick='alert(1)'>x</p>", "<a href='javascript:alert(1)'>x</a>",
    "<a href=' java\tscript:alert(1)'>x</a>", "<img src='data:image/png;base64,AAAA'>", "<iframe src='http://x'></iframe>",
    "<p style='color:red'>x</p>", "<svg><circle/></svg>", "<p><!-- hidden --></p>",
])
def test_the_inertness_check_catches_what_it_looks_for(html):
    """The control for assert_inert: each of these must fail it."""
    with pytest.raises(AssertionError):
        assert_inert(html)
