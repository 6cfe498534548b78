"""The portal replica, exercised over real HTTP on 127.0.0.1.

The extractor below is deliberately naive and written from PORTAL.md alone:
if it reads every page back into exactly the manifest, the manifest is what a
correct extractor gets from the page.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from random import Random
from urllib.parse import urljoin, urlsplit
from urllib.request import urlopen

import lxml.html
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from replica import (
    CHANNELS,
    Article,
    ReplicaServer,
    SiteState,
    expected_articles,
    generate,
    load_state,
    mutate,
    render_article,
    route,
    save_state,
)
from replica.cli import cli
from replica.index import build_index
from replica.manifest import FIELDS
from replica.site import CHANNEL_BY_SLUG, EPOCH_NOW, PORTAL_TZ
from replica.state import state_to_json

PORTAL = Path("/work/shared/portal")
PROJECT = Path(__file__).resolve().parents[1]
SEED = 7
N_ARTICLES = 300
DEFECTS = {"no_body": 2, "bad_bytes": 2}


# --- helpers ---------------------------------------------------------------

def fetch(base: str, target: str, headers: dict | None = None, timeout: float = 10):
    """One GET without following redirects: (status, headers, body)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def parse(body: bytes):
    return lxml.html.fromstring(body.decode("gb18030"))


def text_of(doc, selector: str) -> str | None:
    found = doc.cssselect(selector)
    return found[0].text_content() if found else None


def parse_display_date(value: str) -> str:
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y年%m月%d日"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=PORTAL_TZ).isoformat()
        except ValueError:
            continue
    raise AssertionError(f"unexpected date {value!r}")


def extract(base: str, body: bytes) -> dict:
    """Read an article page the way PORTAL.md describes it."""
    doc = parse(body)
    paragraphs = [p.text_content().removeprefix("\u3000\u3000")
                  for p in doc.cssselect("#article-content p")]
    credit = re.search(r"\(来源:([^()]+)\)$", paragraphs[-1]) if paragraphs else None
    return {
        "url": urljoin(base + "/", doc.cssselect('link[rel="canonical"]')[0].get("href")),
        "channel": doc.cssselect(".place a")[1].text_content(),
        "title": text_of(doc, ".viewbox .title h2"),
        "published_at": parse_display_date(text_of(doc, ".info .time")),
        "lede": text_of(doc, ".intro").removeprefix("导语:"),
        "body": "\n".join(paragraphs),
        "editor": text_of(doc, ".editor").removeprefix("编辑:"),
        "source": text_of(doc, ".source").removeprefix("来源:"),
        "origin_source": credit.group(1) if credit else None,
        "tags": [a.text_content() for a in doc.cssselect(".tags a")],
    }


def skeleton(body: bytes) -> set[str]:
    """Every element as its chain of tag.class#id from the root."""
    doc = parse(body)
    chains = set()
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        parts = []
        for node in [element, *element.iterancestors()]:
            classes = "".join("." + c for c in sorted((node.get("class") or "").split()))
            parts.append(node.tag + classes + (f"#{node.get('id')}" if node.get("id") else ""))
        chains.add(" > ".join(reversed(parts)))
    return chains


def four_grams(text: str) -> set[str]:
    return {text[i:i + 4] for i in range(len(text) - 3)}


def needs_gb18030(article: Article) -> bool:
    text = "".join([article.title, article.lede, *article.paragraphs])
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return True
    return False


# --- fixtures --------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served site that no test mutates."""
    directory = tmp_path_factory.mktemp("replica")
    save_state(generate(N_ARTICLES, SEED, DEFECTS), directory)
    with ReplicaServer(directory) as server:
        yield server


@pytest.fixture(scope="module")
def state(site) -> SiteState:
    return site.state


def live(state: SiteState, *, clean: bool = True) -> list[Article]:
    return [a for a in state.articles.values() if a.live and not (clean and a.defect)]


# --- encoding --------------------------------------------------------------

def test_pages_are_gb18030_declared_gb2312(site, state):
    article = live(state)[0]
    with urlopen(site.url + article.path) as response:
        assert response.headers["Content-Type"] == "text/html; charset=gb2312"
        body = response.read()
    assert b'content="text/html; charset=gb2312"' in body
    assert extract(site.url, body)["title"] == article.title


def test_a_quarter_of_articles_need_gb18030(site, state):
    rare = [a for a in live(state) if needs_gb18030(a)]
    assert 0.15 <= len(rare) / len(live(state)) <= 0.35
    assert any("𠮷" in "".join(a.paragraphs) for a in state.articles.values())
    for article in rare[:10]:
        _, _, body = fetch(site.url, article.path)
        with pytest.raises(UnicodeDecodeError):
            body.decode("gb2312")
        assert extract(site.url, body)["body"] == "\n".join(article.paragraphs)


def test_text_mostly_gb2312_and_not_near_duplicate(state):
    plain = [a for a in live(state) if not needs_gb18030(a)]
    assert plain, "most articles should stay inside GB2312"
    sample = Random(0).sample(live(state), 60)
    grams = [four_grams("\n".join(a.paragraphs)) for a in sample]
    scores = [len(a & b) / len(a | b) for a, b in itertools.combinations(grams, 2)]
    assert max(scores) < 0.5
    assert sum(scores) / len(scores) < 0.2


def test_titles_unique_and_sized(state):
    titles = [a.title for a in state.articles.values()]
    assert len(set(titles)) == len(titles)
    assert all(10 <= len(t) <= 40 for t in titles)


# --- article pages against the reference and the manifest ------------------

def test_every_article_page_reads_back_as_its_manifest_entry(site, state):
    truth = expected_articles(state, site.url)

    def check(article: Article):
        status, _, body = fetch(site.url, article.path)
        assert status == 200
        expected = truth[article.aid]
        got = extract(site.url, body)
        assert got == {k: expected[k] for k in got}, article.aid

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, live(state)))
    record = truth[live(state)[0].aid]
    assert tuple(record) == FIELDS
    assert Counter(a.date_style for a in state.articles.values()).keys() == {"date", "datetime", "cn"}
    assert 0.3 <= sum(r["origin_source"] is not None for r in truth.values()) / len(truth) <= 0.5
    assert all(r["origin_source"] != r["source"] for r in truth.values())


def test_article_markup_matches_reference(site, state):
    reference = skeleton((PORTAL / "article.html").read_bytes())
    article = next(a for a in live(state) if a.tags)
    mine = skeleton(fetch(site.url, article.path)[2])
    assert reference <= mine
    assert {m.rsplit(" > ", 2)[-2] for m in mine - reference} == {"div.tags", "li"}


def test_reference_article_renders_byte_for_byte():
    """The capture, put through the replica, gives back the reference page.

    Only the parts the reference cannot have are normalised: the reference's
    related articles are newer than it, so its 下一篇 cannot be 没有了, and some
    related links carry mobile or tracking URLs by design.
    """
    reference = (PORTAL / "article.html").read_bytes()
    ref_doc = parse(reference)
    lines = (PORTAL / "captured-article.txt").read_text("utf-8").splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("编辑:"))

    def article(aid, path, title, lede, paragraphs):
        day = datetime.strptime(path.split("/")[3] + path.split("/")[4], "%Y%m%d")
        iso = day.replace(tzinfo=PORTAL_TZ).isoformat()
        return Article(aid=aid, channel="djyd", path=path, title=title, lede=lede,
                       paragraphs=paragraphs, published_at=iso, date_style="date",
                       editor="中国电源产业网", source="电源协会行业党支部", tags=[], modified_at=iso)

    main = article(12873, "/news/djyd/2025/0507/12873.html", lines[0],
                   lines[3].removeprefix("导语:"), lines[4:end])
    articles = {main.aid: main}
    for li in ref_doc.cssselect(".related li"):
        path = li.cssselect("a")[0].get("href")
        aid = int(path.rsplit("/", 1)[1].removesuffix(".html"))
        articles[aid] = article(aid, path, li.cssselect("h4")[0].text_content(),
                                li.cssselect("p")[0].text_content(), ["正文"])
    state = SiteState(seed=0, now=EPOCH_NOW, articles=dict(sorted(articles.items())))
    rendered = render_article(state, main).decode("gb18030")
    rendered = re.sub(r"下一篇:<a [^<]*</a>", "下一篇:没有了", rendered)
    rendered = re.sub(r'href="/m/view\.php\?aid=(\d+)"',
                      lambda m: f'href="{articles[int(m.group(1))].path}"', rendered)
    rendered = re.sub(r'(\.html)\?[^"]*"', r'\1"', rendered)
    assert rendered.encode("gb18030") == reference


def test_prev_next_chain_and_related(site, state):
    for channel in CHANNELS:
        chain = sorted((a for a in state.articles.values()
                        if a.channel == channel.slug and a.live), key=lambda a: a.aid)
        for i in (0, len(chain) // 2, len(chain) - 1):
            doc = parse(fetch(site.url, chain[i].path)[2])
            prev_li, next_li = doc.cssselect(".handle .context li")
            for li, label, other in ((prev_li, "上一篇:", chain[i - 1] if i else None),
                                     (next_li, "下一篇:", chain[i + 1] if i + 1 < len(chain) else None)):
                if other is None:
                    assert li.text_content() == label + "没有了"
                else:
                    assert li.cssselect("a")[0].get("href") == other.path
                    assert li.text_content() == label + other.title
            related = doc.cssselect(".related li h4")
            assert [h.text_content() for h in related] == [a.title for a in chain[:i:-1][:6]]
            assert doc.cssselect(".related .more a")[0].get("href") == channel.root


def test_related_links_use_non_canonical_forms(site, state):
    hrefs = []
    for article in live(state)[:60]:
        hrefs += [a.get("href") for a in parse(fetch(site.url, article.path)[2]).cssselect(".related li a")]
    mobile = [h for h in hrefs if h.startswith("/m/view.php?aid=")]
    tracked = [h for h in hrefs if h.startswith("/news/") and "?" in h]
    assert 0.1 < len(mobile) / len(hrefs) < 0.3
    assert 0.15 < len(tracked) / len(hrefs) < 0.4
    assert {h.split("?")[1] for h in tracked} == {"from=timeline", "spm=a2c4g.11186623.0.0"}
    for href in mobile[:3] + tracked[:3]:
        status, _, body = fetch(site.url, href)
        assert status == 200


def test_mobile_and_tracking_urls_serve_the_same_article(site, state):
    article = live(state)[5]
    _, _, desktop = fetch(site.url, article.path)
    for target in (f"/m/view.php?aid={article.aid}", article.path + "?from=timeline",
                   article.path + "?spm=a2c4g.11186623.0.0"):
        status, _, body = fetch(site.url, target)
        assert status == 200 and body == desktop
        canonical = parse(body).cssselect('link[rel="canonical"]')[0].get("href")
        assert canonical == article.path


def test_not_found(site, state):
    article = live(state)[0]
    wrong_folder = article.path.replace(f"/news/{article.channel}/",
                                        "/news/zcfg/" if article.channel != "zcfg" else "/news/hyzx/")
    for target in ("/nope.html", "/news/djyd/2020/0101/99999.html", "/m/view.php?aid=99999",
                   "/m/view.php?aid=x", "/m/view.php", wrong_folder, "/news/nope/",
                   "/news/djyd/list_3_999.html", "/news/djyd/list_2_2.html", "/member/login.php"):
        status, response, body = fetch(site.url, target)
        assert status == 404, target
        assert response.headers["Content-Type"] == "text/html; charset=gb2312"
        assert "页面不存在" in body.decode("gb18030")
    status, _, body = fetch(site.url, "/robots.txt")
    assert status == 200 and body == b"User-agent: *\nDisallow: /member/\n"
    status, _, body = fetch(site.url, "/")
    assert status == 200
    assert [a.get("href") for a in parse(body).cssselect(".channels a")] == [c.root for c in CHANNELS]


def test_defects(site, state):
    truth = expected_articles(state, site.url)
    defective = [a for a in state.articles.values() if a.defect]
    assert Counter(a.defect for a in defective) == Counter(DEFECTS)
    for article in defective:
        status, _, body = fetch(site.url, article.path)
        assert status == 200
        assert truth[article.aid]["quarantined"] is True
        assert truth[article.aid]["defect"] == article.defect
        if article.defect == "no_body":
            assert b"article-content" not in body
            assert parse(body).cssselect(".editor")
        else:
            with pytest.raises(UnicodeDecodeError):
                body.decode("gb18030")
            head, _, rest = body.partition(b"<!-- content begin -->")
            head.decode("gb18030")  # the damage is confined to the body
            rest.partition(b"<!-- content end -->")[2].decode("gb18030")
    assert not any(r["quarantined"] for r in truth.values() if r["defect"] is None)


# --- list pages ------------------------------------------------------------

def test_list_pages_walk_the_channel_newest_first(site, state):
    reference = skeleton((PORTAL / "list.html").read_bytes())
    for channel in CHANNELS:
        expected = sorted((a for a in state.articles.values()
                           if a.channel == channel.slug and a.live), key=lambda a: -a.aid)
        pages = -(-len(expected) // 20)
        seen, target, page = [], channel.root, 1
        while True:
            status, _, body = fetch(site.url, urljoin(channel.root, target))
            assert status == 200
            if page == 1:
                assert skeleton(body) == reference
                assert fetch(site.url, channel.root + "index.html")[2] == body
            doc = parse(body)
            info = doc.cssselect(".pageinfo")[0]
            assert [s.text for s in info.cssselect("strong")] == [str(pages), str(len(expected))]
            assert doc.cssselect(".pagelist .thisclass")[0].text == str(page)
            links = {a.text: a.get("href") for a in doc.cssselect(".pagelist a")}
            if page == 1:
                assert links["首页"] is None and links["上一页"] is None
            else:
                assert links["首页"] == channel.root
                assert links["上一页"] == (channel.root if page == 2 else f"list_{channel.typeid}_{page - 1}.html")
            for item in doc.cssselect(".listbox ul.e2 li"):
                seen.append((item.cssselect("a.title")[0].get("href"), item.cssselect("a.title")[0].text,
                             item.cssselect(".info")[0].text_content(),
                             item.cssselect("p.intro")[0].text_content()))
            if page == pages:
                assert links["下一页"] is None and links["末页"] is None
                break
            assert links["末页"] == f"list_{channel.typeid}_{pages}.html"
            target, page = links["下一页"], page + 1
            assert target == f"list_{channel.typeid}_{page}.html"
        assert seen == [(a.path, a.title, "日期:" + a.published_at[:10], a.lede) for a in expected]


# --- determinism and mutation ----------------------------------------------

def test_generate_is_deterministic():
    assert state_to_json(generate(120, 3, DEFECTS)) == state_to_json(generate(120, 3, DEFECTS))
    assert state_to_json(generate(120, 3)) != state_to_json(generate(120, 4))
    first = generate(120, 3)
    assert [a.aid for a in first.articles.values()] == list(range(10001, 10121))
    dates = [a.published_at[:10] for a in first.articles.values()]
    assert dates == sorted(dates)
    assert first.articles[10120].published_at <= EPOCH_NOW
    assert dates[0] < "2024-03-01"
    for article in first.articles.values():
        assert re.fullmatch(rf"/news/{article.channel}/\d{{4}}/\d{{4}}/{article.aid}\.html", article.path)


def test_mutate_is_deterministic_and_reports_exactly():
    before = generate(N_ARTICLES, SEED, DEFECTS)
    a, b = generate(N_ARTICLES, SEED, DEFECTS), generate(N_ARTICLES, SEED, DEFECTS)
    report = mutate(a, 11)
    assert report == mutate(b, 11)
    assert state_to_json(a) == state_to_json(b)
    assert json.loads(json.dumps(report)) == report

    assert report["round"] == 1 and a.round == 1
    assert report["now"] == a.now == "2026-02-13T12:00:00+08:00"
    assert len(report["edited"]) == 50 and len(report["taken_down"]) == 20
    assert len(report["republished"]) == 10 and len(report["new"]) == 30
    assert set(report["edited"].values()) == {"title", "paragraph_added", "typo", "date"}
    assert Counter(report["taken_down"].values()) == {"404": 15, "redirect": 5}
    assert not set(report["edited"]) & set(report["taken_down"])
    new_aids = sorted([int(k) for k in report["republished"]] + report["new"])
    assert new_aids == list(range(10001 + N_ARTICLES, 10001 + N_ARTICLES + 40))

    old, new = expected_articles(before, "http://x"), expected_articles(a, "http://x")
    changed_field = {"title": "title", "paragraph_added": "body", "typo": "body", "date": "published_at"}
    for aid, kind in report["edited"].items():
        aid = int(aid)
        diff = {k for k in FIELDS if old[aid][k] != new[aid][k]}
        assert diff == {changed_field[kind]}, (aid, kind, diff)
        assert a.articles[aid].path == before.articles[aid].path
        assert a.articles[aid].modified_at == a.now
        if kind == "typo":
            assert len(old[aid]["body"]) == len(new[aid]["body"])
        if kind == "date":
            shift = datetime.fromisoformat(new[aid]["published_at"]) - datetime.fromisoformat(old[aid]["published_at"])
            assert timedelta(days=1) <= abs(shift) <= timedelta(days=4)
    for aid in report["taken_down"]:
        assert new[int(aid)]["status"] == "taken_down"
        assert {k: v for k, v in new[int(aid)].items() if k != "status"} == \
               {k: v for k, v in old[int(aid)].items() if k != "status"}
    for copy_aid, original in report["republished"].items():
        copy = new[int(copy_aid)]
        assert copy["duplicate_of"] == old[original]["url"]
        assert copy["channel"] != old[original]["channel"]
        assert copy["published_at"][:10] == "2026-02-13"
        assert copy["title"] != old[original]["title"] or copy["body"] != old[original]["body"]
        assert copy["lede"] == old[original]["lede"]
    for aid in report["new"]:
        assert new[aid]["published_at"][:10] == "2026-02-13" and new[aid]["duplicate_of"] is None
    for article in before.articles.values():
        if article.defect:
            assert old[article.aid] == new[article.aid]

    second = mutate(a, 11)
    assert second["round"] == 2 and second["now"] == "2026-02-14T12:00:00+08:00"
    assert second != report
    with pytest.raises(ValueError):
        mutate(generate(20, 1), 1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), rounds=st.integers(0, 3))
def test_any_seed_and_round_reads_back_as_manifest(seed, rounds):
    state = generate(40, seed, {"no_body": 1})
    for n in range(rounds):
        mutate(state, seed + n, edits=6, takedowns=3, republish=2, new=3)
    base = "http://replica.test"
    truth = expected_articles(state, base)
    index = build_index(state)
    for article in state.articles.values():
        response = route(state, article.path, "", index)
        if not article.live:
            assert response.status == (302 if article.takedown == "redirect" else 404)
        elif article.defect is None:
            got = extract(base, response.body)
            assert got == {k: truth[article.aid][k] for k in got}


def test_server_picks_up_mutation_from_another_process(tmp_path):
    save_state(generate(N_ARTICLES, SEED, DEFECTS), tmp_path)
    with ReplicaServer(tmp_path) as server:
        before = server.state
        assert fetch(server.url, "/")[0] == 200
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        done = subprocess.run(
            [sys.executable, "-m", "replica", "mutate", "--dir", str(tmp_path), "--seed", "5"],
            capture_output=True, text=True, env=env, cwd=PROJECT, check=True)
        assert done.stdout.startswith("round 1 (2026-02-13T12:00:00+08:00): 50 edited")
        report = json.loads((tmp_path / "mutations.json").read_text("utf-8"))[-1]
        state = load_state(tmp_path)
        assert state.generation == before.generation + 1

        for aid, how in report["taken_down"].items():
            article = before.articles[int(aid)]
            status, response, _ = fetch(server.url, article.path)
            if how == "redirect":
                assert status == 302
                assert response.headers["Location"] == CHANNEL_BY_SLUG[article.channel].root
            else:
                assert status == 404
            assert fetch(server.url, f"/m/view.php?aid={aid}")[0] == status
        truth = expected_articles(state, server.url)
        for aid in list(report["edited"]) + list(report["republished"]) + report["new"][:5]:
            status, _, body = fetch(server.url, truth[int(aid)]["url"][len(server.url):])
            got = extract(server.url, body)
            assert got == {k: truth[int(aid)][k] for k in got}
        gone = {before.articles[int(aid)].path for aid in report["taken_down"]}
        for channel in CHANNELS:
            doc = parse(fetch(server.url, channel.root)[2])
            assert not gone & {a.get("href") for a in doc.cssselect(".listbox a.title")}


def test_etag_and_last_modified(site, state):
    article = live(state)[3]
    status, response, body = fetch(site.url, article.path)
    tag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert tag.startswith('"') and tag.endswith('"')
    assert response.headers["Date"] == "Thu, 12 Feb 2026 04:00:00 GMT"  # the replica clock
    assert modified.endswith(" GMT")

    def status_for(**headers):
        return fetch(site.url, article.path, headers)

    status, response, body = status_for(**{"If-None-Match": tag})
    assert status == 304 and body == b"" and response.headers["ETag"] == tag
    assert status_for(**{"If-None-Match": f'"other", W/{tag}'})[0] == 304
    assert status_for(**{"If-None-Match": '"other"'})[0] == 200
    assert status_for(**{"If-Modified-Since": modified})[0] == 304
    assert status_for(**{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200
    # If-None-Match wins over If-Modified-Since.
    assert status_for(**{"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200
    assert status_for(**{"If-Modified-Since": "not a date"})[0] == 200


def test_keep_alive_counts(site, state):
    """One connection serves many requests, each counted once. How fast is not asserted: a timed
    assertion here failed on a loaded machine, and the crawl benchmarks serve the replica through
    nginx, not through this server."""
    site.reset_counts()
    url = urlsplit(site.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    articles = live(state)[:200]
    for article in articles:
        conn.request("GET", article.path + "?from=timeline")
        response = conn.getresponse()
        assert int(response.headers["Content-Length"]) == len(response.read())
    conn.close()
    assert site.request_counts[articles[0].path + "?from=timeline"] == 1
    assert sum(site.request_counts.values()) == len(articles)
    site.reset_counts()
    assert not site.request_counts


def test_route_is_pure(state):
    article = live(state)[0]
    first = route(state, article.path, "")
    assert first == route(state, article.path, "spm=1")
    assert first.status == 200 and route(state, "/x", "").status == 404


# --- CLI -------------------------------------------------------------------

def test_cli(tmp_path):
    runner = CliRunner()
    for command in ([], ["generate"], ["serve"], ["mutate"], ["manifest"]):
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
    result = runner.invoke(cli, ["generate", "--dir", str(tmp_path), "--articles", "80", "--seed", "2",
                                 "--no-body", "1", "--bad-bytes", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["mutate", "--dir", str(tmp_path), "--seed", "1", "--edits", "4",
                                 "--takedowns", "4", "--republish", "2", "--new", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("round 1 ")
    out = tmp_path / "truth.jsonl"
    result = runner.invoke(cli, ["manifest", "--dir", str(tmp_path), "--base-url", "http://h:1/",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(records) == 85 and records[0]["url"].startswith("http://h:1/news/")
    assert sum(r["quarantined"] for r in records) == 2
    result = runner.invoke(cli, ["mutate", "--dir", str(tmp_path), "--seed", "1", "--edits", "500"])
    assert result.exit_code != 0 and "cannot pick" in result.output
    assert len(json.loads((tmp_path / "mutations.json").read_text("utf-8"))) == 1
