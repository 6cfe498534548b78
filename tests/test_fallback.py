"""The generic fallback's rules, and `portal-archive extract` on saved pages and URLs."""
import json
from datetime import datetime

import pytest

from pipeline.reading.chain import profile_miss, read_article
from pipeline.reading.dates import parse_portal_date
from pipeline.reading.fallback import extract_fallback, is_meta_line, meta_values, method_name, paragraphs_of
from tests.conftest import cli, start_site
from tests.quality import QUALITY

PAGE = """<html><head><title>{title}_行业资讯_某网</title></head><body>
<div class="nav"><a href="/">首页</a> <a href="/a/">资讯</a></div>
<div class="pos">您的位置：<a href="/">首页</a> &gt; <a href="/news/">行业资讯</a></div>
<h1>{title}</h1>
{meta}
<div class="summary">摘要：一句话说清这篇文章。</div>
<div class="text"><p>　　第一段正文,讲清楚发生了什么事情,以及它为什么重要。</p>
<p>　　第二段正文,补充更多的细节与背景。(来源:人民网)</p></div>
<div class="keywords">关键词：<a href="/t/1">储能</a> <a href="/t/2">电网</a></div>
<div class="pager"><p>上一篇：<a href="/p/1.html">前一篇文章</a></p><p>下一篇：没有了</p></div>
<div class="footer">Copyright 某网 京ICP备00000000号</div>
</body></html>"""
TITLE = "某地储能电站并网运行"


def read(meta: str) -> dict:
    return extract_fallback(PAGE.format(title=TITLE, meta=meta), "http://other.test/a/1.html")


@pytest.mark.parametrize("meta, expected", [
    ('<div class="info">发布时间：2025年05月07日 10:35　来源：某报　责任编辑：张三</div>', "2025-05-07T10:35:00+08:00"),
    ('<div class="info"><span>发布时间:2025-05-07</span><span>来源:某报</span><span>编辑:张三</span></div>',
     "2025-05-07T00:00:00+08:00"),
    ('<p class="meta">2025-5-7 10:35 | 来源：某报 | 责任编辑：张三</p>', "2025-05-07T10:35:00+08:00"),
    ('<div>2025年05月07日 10:35 <span>某报</span></div><div>（责任编辑：张三）</div>', "2025-05-07T10:35:00+08:00"),
    ('<div><time datetime="2025-05-07T02:35:00Z">2025年5月7日</time></div>', "2025-05-07T10:35:00+08:00"),
])
def test_chinese_dates_and_labels(meta, expected):
    fields = read(meta)
    # The same moment: a <time> in UTC keeps its own offset.
    assert parse_portal_date(fields["published"]) == datetime.fromisoformat(expected)
    assert fields["title"] == TITLE
    assert fields["body_html"] == ("<p>第一段正文,讲清楚发生了什么事情,以及它为什么重要。</p>"
                                   "<p>第二段正文,补充更多的细节与背景。(来源:人民网)</p>")
    assert fields["lede"] == "一句话说清这篇文章。"
    assert fields["tags"] == ["储能", "电网"]
    assert fields["channel"] == "行业资讯"
    assert fields["context"]["prev"] == {"url": "http://other.test/p/1.html", "title": "前一篇文章"}
    if "张三" in meta:
        assert fields["editor"] == "张三"
    assert fields["extraction"] == method_name() and method_name().startswith("fallback:trafilatura-")


def test_meta_lines_and_the_articles_own_credit():
    assert is_meta_line("发布时间：2025-05-07 来源：某报")
    assert is_meta_line("2025-05-07 中国电源产业网 点击: 次")
    assert not is_meta_line("第二段正文,补充更多的细节与背景。(来源:人民网)")
    assert not is_meta_line("2025年1月10日")
    assert meta_values("发布时间：2025-05-07 10:35 来源：某报 责任编辑：张三") == [
        ("发布时间", "2025-05-07 10:35"), ("来源", "某报"), ("责任编辑", "张三")]


def test_paragraphs_are_cut_at_blocks_and_line_breaks():
    import lxml.html

    node = lxml.html.fromstring("<div>一<br>二<br/><br/>三<p>四<b>五</b></p>六</div>")
    assert paragraphs_of(node) == ["一", "二", "三", "四五", "六"]


def test_a_page_without_article_text_has_no_body():
    page = PAGE.format(title=TITLE, meta="<div>发布时间：2025-05-07</div>").replace(
        '<div class="text">', '<div class="x" style="display:none">').split('<div class="x"')[0] + "</body></html>"
    assert extract_fallback(page, "http://other.test/a/1.html")["body_html"] is None


def test_auto_falls_back_only_when_the_profile_misses(profile):
    reference = (QUALITY / "replica-reference-10001.html").read_bytes().decode("gb18030")
    assert read_article(profile, reference, "http://portal.test/x")["extraction"] == "profile"
    redesigned = (QUALITY / "replica-redesigned-10002.html").read_bytes().decode("gb18030")
    fields = read_article(profile, redesigned, "http://portal.test/x")
    assert fields["extraction"].startswith("fallback:") and fields["profile_miss"] == "profile found no title, body, date"
    assert profile_miss(profile, {"title": "t", "body_html": "<p>x</p>", "published": "日期:2025-05-07"}) is None
    assert read_article(profile, redesigned, "http://portal.test/x", "profile")["extraction"] == "profile"


def test_extract_prints_a_saved_page_as_the_export_does():
    out = cli("extract", str(QUALITY / "replica-redesigned-10004.html"))
    fields = json.loads(out.stdout)
    expected = json.loads((QUALITY / "expected.json").read_text(encoding="utf-8"))["replica-redesigned-10004.html"]
    assert fields["method"].startswith("fallback:trafilatura-") and fields["problem"] is None
    assert fields["aid"] == 10004
    for key in ("title", "published_at", "body", "lede", "editor", "source", "tags", "channel"):
        assert fields[key] == expected["fields"][key], key
    assert {"url", "version", "valid_from", "valid_to", "status", "change", "content_hash", "fetched_at"} <= set(fields)


def test_extract_by_method_and_a_page_that_cannot_be_archived():
    forced = json.loads(cli("extract", str(QUALITY / "replica-reference-10001.html"), "--method", "fallback").stdout)
    assert forced["method"].startswith("fallback:")
    profile_only = cli("extract", str(QUALITY / "replica-redesigned-10004.html"), "--method", "profile", check=False)
    assert profile_only.returncode == 1
    assert json.loads(profile_only.stdout)["problem"].startswith("missing")
    no_body = cli("extract", str(QUALITY / "replica-reference-10038.html"), check=False)
    assert no_body.returncode == 1 and "missing body" in json.loads(no_body.stdout)["problem"]


def test_extract_reads_a_url_and_refuses_what_it_cannot_read(tmp_path):
    site = start_site(tmp_path / "site", 30, seed=37)
    try:
        article = next(iter(site.expected().values()))
        fields = json.loads(cli("extract", article["url"] + "?from=timeline").stdout)
        assert fields["method"] == "profile" and fields["title"] == article["title"]
        assert fields["body"] == article["body"] and fields["url"] == article["url"]
        gone = cli("extract", site.url + "/news/hyzx/2020/0101/1.html", check=False)
        assert gone.returncode == 2 and "HTTP 404" in gone.stderr
    finally:
        site.server.stop()
    missing = cli("extract", str(tmp_path / "nope.html"), check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad = cli("extract", str(tmp_path / "nope.html"), "--method", "magic", check=False)
    assert bad.returncode == 2


# --- dates and titles, as properties ---------------------------------------------------

from datetime import timedelta, timezone  # noqa: E402

import lxml.html  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pipeline.reading.page_meta import choose_title, json_ld, strip_site  # noqa: E402

moments = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2040, 12, 31)).map(
    lambda d: d.replace(microsecond=0))
offsets = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q)))


@settings(max_examples=200, deadline=None)
@given(moments, offsets)
def test_an_explicit_offset_is_kept(moment, offset):
    """The page's own day and time: never shifted into the portal's zone."""
    stated = moment.replace(tzinfo=offset)
    for text in (stated.isoformat(), stated.isoformat().replace("+00:00", "Z"), f"datePublished: {stated.isoformat()}"):
        parsed = parse_portal_date(text, "Asia/Shanghai")
        assert parsed == stated and parsed.utcoffset() == offset.utcoffset(None) and parsed.date() == moment.date()


@settings(max_examples=200, deadline=None)
@given(moments, st.sampled_from(["{y}年{m}月{d}日 {H}:{M:02d}", "发布时间：{y}-{m:02d}-{d:02d} {H:02d}:{M:02d}",
                                 "{y}-{m:02d}-{d:02d} {H:02d}:{M:02d}", "日期:{y}/{m}/{d} {H}:{M:02d}"]))
def test_chinese_forms_without_an_offset_read_in_the_portals_zone(moment, form):
    text = form.format(y=moment.year, m=moment.month, d=moment.day, H=moment.hour, M=moment.minute)
    parsed = parse_portal_date(text, "Asia/Shanghai")
    assert parsed.replace(tzinfo=None) == moment.replace(second=0)
    assert parsed.utcoffset() == timedelta(hours=8)


words = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Lo")), min_size=1, max_size=12)
headlines = st.lists(words, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(headlines, words, st.sampled_from([" - ", " | ", " – ", "_", " :: ", "｜"]))
def test_the_h1_wins_over_a_stated_title_with_the_sites_name(headline, site, separator):
    page = (f'<html><head><title>{headline}{separator}{site}</title>'
            f'<meta property="og:title" content="{headline}{separator}{site}"></head>'
            f'<body><div>{site}</div><h1>{headline}</h1><p>text</p></body></html>')
    doc = lxml.html.document_fromstring(page)
    assert choose_title(doc, json_ld(doc))[0] == headline


@settings(max_examples=200, deadline=None)
@given(headlines, words, st.sampled_from([" - ", " | ", " — ", "_", "｜"]))
def test_a_stated_title_loses_the_sites_name(headline, site, separator):
    assert strip_site(f"{headline}{separator}{site}", {site}) == headline or site in headline
    assert strip_site(headline, {site}) == headline


def test_a_title_the_parser_moved_into_the_body_is_found():
    page = "<custom-wrapper><title>Moved | Site</title><p>Text.</p></custom-wrapper>"
    doc = lxml.html.document_fromstring(page)
    assert choose_title(doc, json_ld(doc)) == ("Moved", "Moved | Site")


def test_structured_data_dates_and_offsets_in_a_page():
    page = ('<html><head><script type="application/ld+json">{"@type": "NewsArticle", "headline": "A headline",'
            ' "datePublished": "2018-10-17T23:30:00-04:00"}</script></head><body><h1>A headline</h1>'
            '<p>First paragraph of the article, long enough to be read as the article text.</p>'
            '<p>Second paragraph of the article, long enough to be read as the article text.</p></body></html>')
    fields = extract_fallback(page, "http://other.test/a")
    assert fields["title"] == "A headline"
    assert parse_portal_date(fields["published"]).isoformat() == "2018-10-17T23:30:00-04:00"


def test_furniture_removal_never_removes_the_article():
    paragraphs = "".join(f"<p>Paragraph {i} of the article says something worth reading today.</p>" for i in range(6))
    for wrapper in ('<form id="aspnetForm">{}</form>', '<div class="content-with-sidebar-wrp">{}</div>',
                    '<nav class="has-section-nav"><div>{}</div></nav>'):
        page = (f'<html><head><title>T</title></head><body><h1>T</h1>'
                f'{wrapper.format(paragraphs)}<div class="footer">Footer</div></body></html>')
        fields = extract_fallback(page, "http://other.test/a")
        assert fields["body_html"] and fields["body_html"].count("<p>") == 6, wrapper


def test_a_stated_title_escaped_twice_reads_as_the_h1():
    page = ('<html><head><meta property="og:title" content="It&amp;#8217;s here &amp;#8211; BGR"></head>'
            '<body><h1>It’s here</h1><p>Text.</p></body></html>')
    doc = lxml.html.document_fromstring(page)
    assert choose_title(doc, json_ld(doc))[0] == "It’s here"


@pytest.mark.parametrize("text, expected", [
    ("会议时间：2025-05-07 09:00-11:30", "2025-05-07T09:00:00+08:00"),
    ("2025-05-07T09:00-04:00", "2025-05-07T09:00:00-04:00"),
    ("2025-05-07 09:00:00+0530", "2025-05-07T09:00:00+05:30"),
    ("2025-05-07T01:00:00.000Z", "2025-05-07T01:00:00+00:00"),
])
def test_an_offset_only_where_iso_writes_one(text, expected):
    assert parse_portal_date(text, "Asia/Shanghai").isoformat() == expected


def test_extract_shows_what_it_read_on_a_page_it_would_quarantine(tmp_path):
    page = tmp_path / "undated.html"
    page.write_text(PAGE.format(title=TITLE, meta=""), encoding="utf-8")
    out = cli("extract", "--method", "fallback", str(page), check=False)
    assert out.returncode == 1 and len(out.stdout.strip().splitlines()) == 1  # one JSON line when piped
    fields = json.loads(out.stdout)
    assert fields["problem"].startswith("missing date")
    assert fields["title"] == TITLE and fields["body"].startswith("第一段正文") and fields["published"] is None
    assert fields["lede"] == "一句话说清这篇文章。" and fields["tags"] == ["储能", "电网"]
    assert fields["channel"] == "行业资讯"


def test_a_breadcrumb_in_a_nav_names_the_channel():
    page = PAGE.format(title=TITLE, meta="<div>发布时间：2025-05-07</div>").replace(
        '<div class="pos">', '<nav class="crumbs">').replace('行业资讯</a></div>', '行业资讯</a></nav>')
    assert "<nav" in page and extract_fallback(page, "http://other.test/a/1.html")["channel"] == "行业资讯"
