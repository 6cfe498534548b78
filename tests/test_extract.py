"""Extraction and cleaning of the recorded reference pages, checked against the real capture."""
from datetime import datetime, timezone
from pathlib import Path

import pytest
from parsel import Selector

from pipeline.reading.chain import read_page
from pipeline.reading.decode import decode_page
from pipeline.reading.extract import extract_list
from pipeline.reading.records import CleanArticle, Rejected

FILES = Path(__file__).parent / "files"
URL = "http://portal.test/news/djyd/2025/0507/12873.html"


def read(raw: bytes, profile, url=URL):
    """The page read by the profile, as the crawl's reader reads it."""
    return read_page(profile, raw, url=url, headers={"Content-Type": "text/html; charset=gb2312"},
                     fetched_at=datetime(2026, 2, 12, tzinfo=timezone.utc), method="profile")


@pytest.fixture
def reference(profile):
    article = read((FILES / "article-12873.html").read_bytes(), profile)
    assert isinstance(article, CleanArticle), article
    return article


@pytest.fixture
def captured():
    return (FILES / "article-12873.captured.txt").read_text(encoding="utf-8").split("\n")


def test_reference_fields_match_the_capture(reference, captured):
    assert reference.title == captured[0]
    assert reference.published_at.isoformat() == "2025-05-07T00:00:00+08:00"
    assert reference.lede == captured[3].removeprefix("导语:")
    assert reference.body_text == "\n".join(captured[4:11])
    assert reference.editor == "中国电源产业网"
    assert reference.source == "电源协会行业党支部"
    assert reference.origin_source == "“识政”微信公众号"
    assert reference.tags == []
    assert reference.channel == "党建园地"
    assert reference.url == URL
    assert reference.aid == 12873


def test_boilerplate_never_leaks_into_fields(reference):
    everything = " ".join(str(v) for v in (reference.title, reference.lede, reference.body_text,
                                           reference.body_html, reference.editor, reference.source))
    for leak in ("count.php", "点击", "分享到", "分隔线", "相关信息", "网友交流群", "MORE", "<script"):
        assert leak not in everything


def test_related_and_context_are_kept_apart_from_the_body(reference):
    assert len(reference.related) == 6
    assert reference.related[0]["title"] == "抓住“为民”“实干”两个关键词"
    assert reference.context == {"prev": None, "next": None}
    assert "抓住“为民”" not in reference.body_text


def test_body_html_is_sanitized_and_unindented(reference):
    assert reference.body_html.startswith("<p>5月6日下午")
    assert "\u3000" not in reference.body_html
    assert reference.body_html.count("<p>") == 7


def test_title_falls_back_to_head_title_without_suffix(profile):
    raw = (FILES / "article-12873.html").read_bytes().replace(b"<h2>", b"<h3>").replace(b"</h2>", b"</h3>")
    clean = read(raw, profile)
    assert clean.title.startswith("部市共建") and not clean.title.endswith("中国电源产业网")


def test_missing_body_is_rejected_with_its_reason(profile):
    raw = (FILES / "article-12873.html").read_bytes().replace(b'id="article-content"', b'id="x"') \
        .replace(b'class="content"', b'class="x"')
    rejected = read(raw, profile)
    assert isinstance(rejected, Rejected) and not rejected.broken and rejected.reason.startswith("missing body")


def test_broken_bytes_are_rejected_never_mojibake(profile):
    raw = (FILES / "article-12873.html").read_bytes().replace("尹力感谢".encode("gb18030"), b"\x81\x20\xff")
    rejected = read(raw, profile)
    assert isinstance(rejected, Rejected) and rejected.broken and rejected.reason.startswith("undecodable")


def test_gb2312_declaration_decodes_as_gb18030(profile):
    raw = (FILES / "article-12873.html").read_bytes()
    # Python's strict gb2312 turns the portal's U+2014 into U+2015: silently wrong.
    assert "—" not in raw.decode("gb2312", errors="replace")
    text, encoding = decode_page(raw, "text/html; charset=gb2312", profile.gb_family)
    assert encoding == "gb18030" and "—" in text


def test_utf8_page_under_a_gb_label_is_not_mojibake(profile):
    raw = (FILES / "article-12873.html").read_bytes().decode("gb18030").encode("utf-8")
    text, encoding = decode_page(raw, "text/html; charset=gb2312", profile.gb_family)
    assert encoding == "utf-8" and "部市共建" in text


def test_the_page_comes_back_compressed_and_hashed_for_the_archive(reference):
    import hashlib

    raw = (FILES / "article-12873.html").read_bytes()
    assert reference.page.raw() == raw and reference.page.sha256 == hashlib.sha256(raw).hexdigest()
    assert reference.page.size == len(raw) and len(reference.page.body) < len(raw)
    assert reference.content_hash and reference.body_hash and reference.paragraph_hashes


def test_list_page_links_and_pager(profile):
    doc = Selector(text=(FILES / "list-djyd-1.html").read_bytes().decode("gb18030"))
    items, next_url = extract_list(profile, doc, "http://portal.test/news/djyd/")
    assert len(items) == 6
    assert items[0] == ("http://portal.test/news/djyd/2026/0212/14871.html", "日期:2026-02-12")
    assert next_url == "http://portal.test/news/djyd/list_3_2.html"
