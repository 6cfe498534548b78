"""Property-based tests for the plain rules: URL identity, dates, text cleaning, fingerprints."""
import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.reading.dates import DateParseError, parse_portal_date
from pipeline.reading.fingerprint import content_hash, paragraph_hashes, similarity
from pipeline.reading.html import clean_body, sanitize_body_html
from pipeline.reading.text import normalize_inline, split_tags, strip_label

SHANGHAI = ZoneInfo("Asia/Shanghai")
aids = st.integers(min_value=1, max_value=10**9)
slugs = st.sampled_from(["hyzx", "zcfg", "djyd", "qydt", "jsqy"])
dates = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
junk_params = st.lists(st.tuples(st.sampled_from(["from", "spm", "utm_source", "share"]),
                                 st.text("abc123._", min_size=0, max_size=8)), max_size=3)
cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
blanks = st.sampled_from([" ", "\u3000", "\u00a0", "\u200b", "\t", "\n", "\ufeff"])
texty = st.text(st.one_of(cjk, blanks, st.sampled_from(list(",.:“”()—·镕"))), max_size=60)


def query(params):
    return "&".join(f"{k}={v}" for k, v in params)


@given(aid=aids, slug=slugs, day=dates, params=junk_params, fragment=st.text("abc", max_size=3))
def test_every_url_form_of_an_article_names_one_identity(profile, aid, slug, day, params, fragment):
    desktop = f"http://portal.test/news/{slug}/{day:%Y}/{day:%m%d}/{aid}.html"
    tracked = desktop + ("?" + query(params) if params else "") + (f"#{fragment}" if fragment else "")
    mobile = f"http://portal.test/m/view.php?{query([*params, ('aid', aid)])}"
    assert profile.aid_of(desktop) == profile.aid_of(tracked) == profile.aid_of(mobile) == aid
    assert profile.clean_url(tracked) == desktop
    assert profile.clean_url(mobile) == f"http://portal.test/m/view.php?aid={aid}"


hrefs = st.one_of(
    st.lists(st.sampled_from(list("/.;?#:=&%ab1 \t\n\\") + ["..", "//", "新闻"]), max_size=16).map("".join),
    st.builds("/news/{}/{}.html{}".format, slugs, aids, st.sampled_from(["", "?", "?aid=1", "#", "#x", ";p", "/./"])))
bases = st.sampled_from(["http://portal.test/news/hyzx/2024/0101/1.html", "https://portal.test:8443/m/view.php?aid=3",
                         "http://user@127.0.0.1:8000/", "http://portal.test", "file:///tmp/x.html", "portal.test/a"])


@given(bases, hrefs)
@settings(max_examples=2000)
def test_a_link_joins_to_what_urljoin_gives(base, href):
    from urllib.parse import urljoin

    from pipeline.reading.extract import join_url

    assert join_url(base, href) == urljoin(base, href)


@given(aid=aids, slug=slugs, day=dates, params=junk_params)
def test_clean_url_is_idempotent(profile, aid, slug, day, params):
    url = f"http://portal.test/news/{slug}/{day:%Y}/{day:%m%d}/{aid}.html?{query(params)}"
    once = profile.clean_url(url)
    assert profile.clean_url(once) == once
    mobile = profile.clean_url(f"http://portal.test/m/view.php?{query([*params, ('aid', aid)])}")
    assert profile.clean_url(mobile) == mobile


@given(day=dates, style=st.sampled_from(["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y年%m月%d日", "发布时间:%Y-%m-%d %H:%M:%S"]))
def test_portal_dates_parse_in_shanghai_time(day, style):
    parsed = parse_portal_date(day.strftime(style))
    assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 8 * 3600
    assert parsed.date() == day.date()
    if "%H" in style:
        assert (parsed.hour, parsed.minute) == (day.hour, day.minute)


@pytest.mark.parametrize("text", ["", "暂无", "2025-13-45", "点击: 12 次"])
def test_no_date_is_an_error_not_a_guess(text):
    with pytest.raises(DateParseError):
        parse_portal_date(text)


@given(texty)
def test_normalize_inline_is_idempotent_and_keeps_every_visible_character(text):
    once = normalize_inline(text)
    assert normalize_inline(once) == once
    visible = [c for c in text if not c.isspace() and c not in "\u200b\ufeff\u3000\u00a0"]
    assert [c for c in once if c != " "] == visible


@given(st.sampled_from(["编辑", "来源", "导语"]), st.sampled_from([":", "：", " : "]), texty)
def test_labels_are_stripped_with_either_colon(label, colon, value):
    assert strip_label(f"{label}{colon}{value}", [label]) == normalize_inline(value)


def test_tags_from_text_or_links():
    assert split_tags("标签: 电源 储能、 电源", ["标签"]) == ["电源", "储能"]
    assert split_tags("标签:", ["标签"]) == []
    assert split_tags([" 光伏 ", "光伏", ""], ["标签"]) == ["光伏"]


paragraphs = st.lists(st.text(st.one_of(cjk, st.sampled_from(list(",。“”"))), min_size=1, max_size=40),
                      min_size=1, max_size=6)


@given(paragraphs, st.sampled_from(["\u3000\u3000", "", "&nbsp;", " \u200b"]))
def test_clean_body_is_idempotent_and_loses_no_text(paras, indent):
    html = "".join(f"<p>{indent}{p}</p>\n" for p in paras)
    body_html, body_text = clean_body(html)
    assert body_text == "\n".join(p for p in (normalize_inline(p) for p in paras) if p)
    again_html, again_text = clean_body(body_html)
    assert (again_html, again_text) == (body_html, body_text)


def test_sanitizer_leaves_nothing_that_runs():
    hostile = ('<p onclick="x()">a<script>alert(1)</script><img src=x onerror="alert(2)">'
               '<a href="javascript:alert(3)">b</a><iframe src="http://evil"></iframe></p>')
    clean = sanitize_body_html(hostile).lower()
    for attack in ("<script", "onerror", "onclick", "javascript:", "<iframe", "alert(1)"):
        assert attack not in clean


fields = st.fixed_dictionaries({
    "channel": st.sampled_from(["党建园地", "行业资讯"]), "title": texty, "lede": st.none() | texty,
    "body_text": texty, "body_html": texty, "editor": st.none() | texty, "source": st.none() | texty,
    "origin_source": st.none() | texty, "tags": st.lists(texty, max_size=3),
    "published_at": dates.map(lambda d: d.replace(tzinfo=SHANGHAI)),
})


@given(fields)
def test_content_hash_is_stable_and_ignores_volatile_fields(values):
    h = content_hash(values)
    assert content_hash(dict(values)) == h
    assert content_hash({**values, "related": [1], "context": {"next": 2}, "views": 9}) == h
    assert content_hash({**values, "title": values["title"] + "改"}) != h
    # The same instant in another zone is the same content.
    assert content_hash({**values, "published_at": values["published_at"].astimezone(ZoneInfo("UTC"))}) == h


def test_content_hash_is_the_same_in_a_fresh_process():
    values = {"channel": "党建园地", "title": "标题", "published_at": datetime(2025, 5, 7, tzinfo=SHANGHAI),
              "lede": None, "body_text": "正文", "body_html": "<p>正文</p>", "editor": None,
              "source": None, "origin_source": None, "tags": ["电源"]}
    plain = {k: v for k, v in values.items() if k != "published_at"}
    code = ("from datetime import datetime; from zoneinfo import ZoneInfo\n"
            "from pipeline.reading.fingerprint import content_hash\n"
            f"values = {plain!r}\n"
            "values['published_at'] = datetime(2025, 5, 7, tzinfo=ZoneInfo('Asia/Shanghai'))\n"
            "print(content_hash(values))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == content_hash(values)


article_paragraphs = st.lists(st.text(cjk, min_size=40, max_size=120), min_size=3, max_size=8)


@settings(max_examples=50)
@given(article_paragraphs)
def test_a_copy_with_an_extra_line_is_similar_and_shares_its_paragraphs(paras):
    body = "\n".join(paras)
    copy = body + "\n本文转载自中国电源学会。"
    assert similarity(body, copy) > 0.8
    assert set(paragraph_hashes(body)) <= set(paragraph_hashes(copy))
