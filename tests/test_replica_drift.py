"""Layout drift: a share of article pages in the redesigned markup, same truth."""
from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urljoin

import pytest
from test_replica import extract, fetch, parse

from replica import CHANNELS, DriftPlan, ReplicaServer, expected_articles, generate, route, save_state
from replica.site import PORTAL_TZ

SHARE = 0.3
PLAN = DriftPlan(SHARE, seed=5)


def extract_redesigned(base: str, body: bytes) -> dict:
    """Read a redesigned page the way redesign.py documents it."""
    doc = parse(body)
    meta = {}
    for span in doc.cssselect(".news-meta span"):
        label, _, value = span.text_content().partition("：")
        meta[label] = value
    paragraphs = [p.text_content() for p in doc.cssselect(".news-body p")]
    credit = re.search(r"\(来源:([^()]+)\)$", paragraphs[-1]) if paragraphs else None
    shown = meta["发布时间"]
    moment = datetime.strptime(shown, "%Y年%m月%d日 %H:%M" if " " in shown else "%Y年%m月%d日")
    return {
        "url": urljoin(base + "/", doc.cssselect('link[rel="canonical"]')[0].get("href")),
        "channel": doc.cssselect(".crumbs a")[1].text_content(),
        "title": doc.cssselect("h1.news-title")[0].text_content(),
        "published_at": moment.replace(tzinfo=PORTAL_TZ).isoformat(),
        "lede": doc.cssselect(".summary")[0].text_content().removeprefix("摘要："),
        "body": "\n".join(paragraphs),
        "editor": meta["责任编辑"],
        "source": meta["来源"],
        "origin_source": credit.group(1) if credit else None,
        "tags": [a.text_content() for a in doc.cssselect(".keywords a")],
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("drift")
    save_state(generate(300, 8, {"no_body": 2, "bad_bytes": 1}, {"hostile": 1}), directory)
    with ReplicaServer(directory, drift=PLAN) as server:
        yield server


def test_share_is_seeded_and_stable():
    aids = range(10001, 14001)
    chosen = [aid for aid in aids if PLAN.applies(aid)]
    assert 0.27 < len(chosen) / len(aids) < 0.33
    assert chosen == [aid for aid in aids if DriftPlan(SHARE, seed=5).applies(aid)]
    assert chosen != [aid for aid in aids if DriftPlan(SHARE, seed=6).applies(aid)]
    assert set(chosen) <= {aid for aid in aids if DriftPlan(0.6, seed=5).applies(aid)}
    assert not any(DriftPlan(0.0).applies(aid) for aid in aids)
    with pytest.raises(ValueError):
        DriftPlan(1.2)


def test_redesigned_pages_carry_the_same_ground_truth(site):
    state = site.state
    truth = expected_articles(state, site.url)
    drifted = 0
    for article in state.articles.values():
        if not article.live or article.defect:
            continue
        status, response, body = fetch(site.url, article.path)
        assert status == 200 and response.headers["Content-Type"] == "text/html; charset=gb2312"
        assert body == fetch(site.url, f"/m/view.php?aid={article.aid}")[2]
        expected = truth[article.aid]
        if PLAN.applies(article.aid):
            drifted += 1
            doc = parse(body)
            assert not doc.cssselect("#article-content, .viewbox, .place, .intro, .editor")
            assert "\u3000" not in "".join(p.text_content() for p in doc.cssselect(".news-body p"))
            assert doc.cssselect("title")[0].text_content().endswith("_中国电源产业网")
            assert b'<meta charset="gb2312" />' in body
            got = extract_redesigned(site.url, body) if article.special is None else None
        else:
            got = extract(site.url, body) if article.special is None else None
        if got is not None:
            assert got == {k: expected[k] for k in got}, article.aid
    assert 0.2 < drifted / len(truth) < 0.4


def test_defects_survive_the_redesign(site):
    for article in site.state.articles.values():
        if not article.defect or not PLAN.applies(article.aid):
            continue
        body = fetch(site.url, article.path)[2]
        if article.defect == "no_body":
            assert b"news-body" not in body and b"news-title" in body
        else:
            with pytest.raises(UnicodeDecodeError):
                body.decode("gb18030")


def test_list_pages_keep_the_old_markup_and_drift_switches_back(site):
    for channel in CHANNELS:
        assert fetch(site.url, channel.root)[2] == route(site.state, channel.root).body
    article = next(a for a in site.state.articles.values()
                   if a.live and not a.defect and not a.special and PLAN.applies(a.aid))
    assert b"news-detail" in fetch(site.url, article.path)[2]
    site.set_drift(None)
    try:
        body = fetch(site.url, article.path)[2]
        assert body == route(site.state, article.path).body
        assert extract(site.url, body)["title"] == article.title
    finally:
        site.set_drift(PLAN)
    assert b"news-detail" in fetch(site.url, article.path)[2]
