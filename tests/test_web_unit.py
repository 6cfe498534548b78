"""The web browser's parts on a small archive written through the real write path (no crawl, no browser):
the search index kept by the database, read-only access, the token and binding rules, the diff,
escaping in feeds and charts, sanitizing on output.

The tests marked `archive` run on SQLite and on PostgreSQL (the bigram index: FTS5 there, a tsvector here). The unmarked ones
need no archive, or are about a SQLite file: one that is read-only on disk, one that is not there."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from xml.etree import ElementTree

import pytest
from sqlalchemy.exc import InternalError, OperationalError

from pipeline.archive.db import ArchiveError, open_archive, session_scope, upgrade
from pipeline.archive import queries, search
from pipeline.archive.diff import changed_fields, char_segments, fold, paragraph_rows
from pipeline.archive.models import ArticleVersion
from pipeline.archive.queries import ChangeRow
from pipeline.archive.search import SCAN_WINDOW, snippet
from pipeline.archive.versions import record_article, record_gone
from pipeline.reading.fingerprint import fingerprint
from pipeline.reading.html import clean_body
from pipeline.reading.records import ArticleGone, CleanArticle, Page
from tests.conftest import BACKEND, cli, new_database, new_unmigrated_database, query
from web import create_app
from web.charts import bar_chart
from web.feeds import change_link, changes_atom
from web.readonly import open_readonly
from web.security import WebError, check_binding, is_loopback, sanitized_body

T0 = datetime(2026, 2, 12, 4, 0, tzinfo=timezone.utc)


def TestClient(app, **kwargs):
    """Starlette's in-process client (it warns that it would rather have `httpx2`; httpx is what we have)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient as client

    return client(app, **kwargs)
BASE = "http://portal.test"


def article(aid: int, title: str, paragraphs: list[str], at: datetime = T0, lede: str = "导语") -> CleanArticle:
    body_html, body_text = clean_body("".join(f"<p>{p}</p>" for p in paragraphs))
    item = CleanArticle(
        aid=aid, url=f"{BASE}/news/hyzx/2026/0212/{aid}.html",
        page=Page.of(f"<html>{title}</html>".encode(), url=f"{BASE}/news/hyzx/2026/0212/{aid}.html", http_status=200,
                     headers={}, fetched_at=at, encoding="utf-8"),
        channel="行业资讯", title=title, published_at=at - timedelta(days=aid % 7), lede=lede,
        body_html=body_html, body_text=body_text, editor="中国电源产业网", source="国家能源局",
        origin_source=None, tags=["光伏"])
    return fingerprint(item)


class Archive:
    """An archive at head (its URL), written the way a crawl writes it."""

    def __init__(self, url: str):
        self.url = url
        self.engine = open_archive(self.url, auto_upgrade=True)
        self.runs = 0

    def write(self, *items):
        from pipeline.archive import runs

        run_id = runs.start_run(self.engine, "crawl", BASE, {})
        with session_scope(self.engine) as session:
            for item in items:
                if isinstance(item, ArticleGone):
                    record_gone(session, run_id, item, 1)
                else:
                    record_article(session, run_id, item)
        runs.finish_run(self.engine, run_id, "succeeded", {})

    def search(self, q: str, **params) -> list[int]:
        with TestClient(create_app(open_readonly(self.url)), base_url="http://127.0.0.1") as client:
            answer = client.get("/api/articles", params={"q": q, "per_page": 200, **params})
            assert answer.status_code == 200, answer.text
            return sorted(item["aid"] for item in answer.json()["items"])


@pytest.fixture
def small(request, tmp_path):
    archive = Archive(new_database(request, tmp_path))
    archive.write(
        article(101, "光伏逆变器出口增长", ["今年光伏逆变器出口同比增长三成。", "企业加快海外布局。"]),
        article(102, "储能电站并网运行", ["国内最大的钠离子电池储能电站并网运行。"]),
        article(103, "充电桩建设提速", ["城市充电基础设施建设持续提速,光伏车棚成为新亮点。"]),
    )
    yield archive
    archive.engine.dispose()


# --- the search index ------------------------------------------------------------------

@pytest.mark.archive
def test_search_finds_chinese_substrings_of_the_current_version(small):
    assert small.search("逆变器出口") == [101]
    assert small.search("钠离子电池储能") == [102]
    assert small.search("光伏") == [101, 103]  # two characters: one bigram
    assert small.search("光伏 车棚") == [103]  # every term must occur
    assert small.search("光伏逆变器 出口") == [101]
    assert small.search("氢能") == []


@pytest.mark.archive
def test_the_index_follows_edits_and_takedowns(small):
    later = T0 + timedelta(days=1)
    small.write(article(101, "光伏逆变器出口增长", ["今年光伏组件出口同比增长三成。", "企业加快海外布局。"], at=later))
    assert small.search("逆变器出口") == [101]  # still in the (unchanged) title
    assert small.search("光伏逆变器出口同比") == []  # the old body is no longer searched
    assert small.search("光伏组件出口") == [101]
    small.write(ArticleGone(f"{BASE}/news/hyzx/2026/0212/102.html", 102, 404, later, "HTTP 404"))
    assert small.search("钠离子电池") == [102]  # a takedown keeps its last content
    assert small.search("钠离子电池", status="live") == []
    assert small.search("钠离子电池", status="taken_down") == [102]
    open_versions = query(small.url, "SELECT count(*) FROM article_versions WHERE valid_to IS NULL")[0][0]
    # The index holds exactly the open versions: the write path adds each new one and takes out each closed one.
    if BACKEND == "postgres":
        indexed = query(small.url, "SELECT version_id FROM article_bigrams ORDER BY version_id")
    else:
        indexed = query(small.url, "SELECT rowid FROM article_bigrams ORDER BY rowid")
    assert indexed == query(small.url, "SELECT id FROM article_versions WHERE valid_to IS NULL ORDER BY id")
    assert open_versions == 3


@pytest.mark.archive
def test_the_edited_list_counts_articles_edited_at_least_once(small):
    """Its total, counted from the change index when `edited` is the only filter and row by row
    with another: an article edited twice counts once, one only taken down and back not at all."""
    later = T0 + timedelta(days=1)
    small.write(article(101, "光伏逆变器出口增长", ["今年光伏组件出口同比增长三成。", "企业加快海外布局。"], at=later))
    small.write(article(101, "光伏逆变器出口大增", ["今年光伏组件出口同比增长三成。", "企业加快海外布局。"],
                        at=later + timedelta(hours=1)))
    small.write(ArticleGone(f"{BASE}/news/hyzx/2026/0212/102.html", 102, 404, later, "HTTP 404"))
    small.write(article(102, "储能电站并网运行", ["国内最大的钠离子电池储能电站并网运行。"], at=later + timedelta(hours=2)))
    small.write(article(103, "充电桩建设提速", ["城市充电基础设施建设持续提速,光伏车棚成为新亮点。", "新增一段。"],
                        at=later + timedelta(hours=3)))
    with session_scope(small.engine) as session:
        for flt in (queries.ArticleFilter(status="edited"), queries.ArticleFilter(status="edited", channel="行业资讯")):
            found = queries.list_articles(session, flt, ZoneInfo("Asia/Shanghai"))
            assert sorted(row.aid for row in found.items) == [101, 103] and found.total == 2, flt
        assert queries.list_articles(session, queries.ArticleFilter(status="edited", channel="政策法规"),
                                     ZoneInfo("Asia/Shanghai")).total == 0


@pytest.mark.archive
def test_query_syntax_is_searched_for_literally(small):
    # FTS5's and tsquery's syntax is punctuation and words to the split: quotes and operators separate, OR and
    # NEAR are words that must occur, and a query of punctuation alone asks for nothing (every article).
    expected = {'"光伏': [101, 103], "光伏*": [101, 103], '光伏" OR "储能': [], "NEAR(光伏 储能)": [],
                "title:光伏": [], "a\x00b": [], "光伏 & 储能": [], "光伏 <-> 逆变器": [101], "'光伏':*": [101, 103]}
    for q, aids in expected.items():
        assert small.search(q) == aids, q
    for q in ["%", "_", "\\", "''", "!"]:
        assert small.search(q) == [101, 102, 103], q


@pytest.mark.archive
def test_a_query_of_punctuation_alone_is_said_to_have_searched_nothing(small):
    """It lists every article, as without a query, and the list, the page and the API say that
    nothing was searched rather than that every article matched."""
    with session_scope(small.engine) as session:
        for q, ignored, total in (("，", True, 3), ("!!! …", True, 3), ("光伏", False, 2), ("光伏，", False, 2)):
            found = queries.list_articles(session, queries.ArticleFilter(q=q), ZoneInfo("Asia/Shanghai"))
            assert (found.ignored_query, found.total) == (ignored, total), q
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        page = client.get("/", params={"q": "，"}).text
        assert "3 articles</p>" in page and "matching" not in page and 'id="ignored-query"' in page
        searched = client.get("/", params={"q": "光伏"}).text
        assert "2 articles matching “光伏”" in searched and 'id="ignored-query"' not in searched
        assert client.get("/api/articles", params={"q": "，"}).json()["ignored_query"] is True
        assert client.get("/api/articles", params={"q": "光伏"}).json()["ignored_query"] is False


@pytest.mark.archive
def test_the_migration_indexes_articles_written_before_it(request, tmp_path):
    from alembic import command

    from pipeline.archive.db import alembic_config, make_engine

    url = new_unmigrated_database(request, tmp_path, "old")
    upgrade(url)
    archive = Archive.__new__(Archive)
    archive.url = url
    archive.engine = make_engine(url)
    archive.write(article(201, "高压直流输电工程投运", ["特高压直流输电工程正式投运。"]))
    archive.engine.dispose()
    # Back to before the index (the article stays), then forward again: the index must hold it.
    command.downgrade(alembic_config(url), "0002")
    upgrade(url)
    assert archive.search("直流输电工程") == [201]


# --- read-only, binding, token ------------------------------------------------------------

@pytest.mark.archive
def test_the_archive_is_opened_read_only(small):
    engine = open_readonly(small.url)
    refused = InternalError if BACKEND == "postgres" else OperationalError  # psycopg: ReadOnlySqlTransaction
    with engine.connect() as conn:
        with pytest.raises(refused, match="readonly|read-only|query_only"):
            conn.exec_driver_sql("DELETE FROM articles")
    engine.dispose()


def test_a_read_only_archive_file_can_be_browsed(tmp_path):
    """A file's permissions: SQLite only."""
    small = Archive(f"sqlite:///{tmp_path / 'archive.sqlite'}")
    small.write(article(101, "光伏逆变器出口增长", ["今年光伏逆变器出口同比增长三成。", "企业加快海外布局。"]))
    small.engine.dispose()
    path = tmp_path / "archive.sqlite"
    path.chmod(0o444)
    try:
        assert small.search("逆变器") == [101]
    finally:
        path.chmod(0o644)


def test_an_archive_that_is_missing_is_refused(tmp_path):
    """A file that is not there: SQLite only (a PostgreSQL database that is not there: below)."""
    with pytest.raises(ArchiveError, match="no archive at"):
        open_readonly(f"sqlite:///{tmp_path / 'nothing.sqlite'}")


@pytest.mark.archive
def test_an_archive_that_is_behind_is_refused(request, tmp_path):
    url = new_unmigrated_database(request, tmp_path, "behind")
    upgrade(url, "0002")
    with pytest.raises(ArchiveError, match="portal-archive db upgrade"):
        open_readonly(url)


def test_loopback_needs_no_token_any_other_address_does():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert is_loopback(host) and check_binding(host, None) is None
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        with pytest.raises(WebError, match="PORTAL_ARCHIVE_WEB_TOKEN"):
            check_binding(host, None)
        with pytest.raises(WebError):
            check_binding(host, "   ")
        assert check_binding(host, "s3cret") == "s3cret"


@pytest.mark.archive
def test_binding_elsewhere_without_a_token_refuses_to_start(small):
    result = cli("web", "--host", "0.0.0.0", "--port", "0", "--db", small.url, check=False, timeout=60,
                 env={"PORTAL_ARCHIVE_WEB_TOKEN": ""})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("portal-archive: error: refusing to serve the archive on 0.0.0.0 without a token")
    assert "PORTAL_ARCHIVE_WEB_TOKEN" in lines[0]


def test_a_missing_archive_is_a_one_line_error(tmp_path):
    """A SQLite file that is not there (SQLite only)."""
    result = cli("web", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}", check=False, timeout=60)
    assert result.returncode == 2 and "there is no archive" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.archive
def test_a_missing_postgresql_database_is_a_one_line_error_without_its_password(postgres_server):
    url = postgres_server.url("no_such_archive").replace(f"{postgres_server.user}@", f"{postgres_server.user}:secret@")
    result = cli("web", "--db", url, check=False, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portal-archive: error: cannot open database "
                                                   + url.replace(":secret@", ":***@"))
    assert 'database "no_such_archive" does not exist' in lines[0]
    assert "secret" not in result.stdout + result.stderr


@pytest.mark.archive
def test_with_a_token_every_request_must_carry_it(small):
    app = create_app(open_readonly(small.url), token="s3cret-token", bound_host="0.0.0.0")
    with TestClient(app, base_url="http://archive.example:8080", follow_redirects=False) as client:
        assert client.get("/").status_code == 401
        answer = client.get("/api/articles")
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/articles", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert client.get("/?token=wrong").status_code == 401
        login = client.get("/articles/101?token=s3cret-token&x=1")
        assert login.status_code == 303 and login.headers["location"] == "/articles/101?x=1"
        assert "s3cret-token" not in login.headers["set-cookie"]  # the cookie holds a digest
        assert client.get("/articles/101").status_code == 200  # the cookie now carries it


@pytest.mark.archive
def test_without_a_token_only_loopback_host_names_are_answered(small):
    app = create_app(open_readonly(small.url))
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"Host": "localhost:8080"}).status_code == 200
        assert client.get("/", headers={"Host": "[::1]:8080"}).status_code == 200
        assert client.get("/", headers={"Host": "rebound.attacker.example"}).status_code == 400


@pytest.mark.archive
def test_pages_answer_in_html_and_bad_input_is_forgiven(small):
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        for path in ("/", "/?page=abc&from=notadate&status=bogus", "/articles/101", "/articles/101/versions/1",
                     "/articles/101/diff", "/changes", "/changes?kind=bogus", "/runs", "/runs?days=x",
                     "/quarantine", "/api", "/feeds/changes.atom", "/raw/1", "/raw/1/page"):
            assert client.get(path).status_code == 200, path
        for path in ("/articles/999", "/articles/abc", "/articles/101/versions/9", "/raw/999"):
            assert client.get(path).status_code == 404, path
        assert client.get("/api/articles/abc").status_code == 422
        jump = client.get("/?q=" + f"{BASE}/news/hyzx/2026/0212/102.html", follow_redirects=False)
        assert jump.headers["location"] == "/articles/102"
        raw = client.get("/raw/1/page")
        assert raw.headers["content-security-policy"].startswith("sandbox;")


@pytest.mark.archive
def test_ids_beyond_the_archives_columns_are_not_found(small):
    """Run and raw page ids are INTEGER columns, aids BIGINT: PostgreSQL refuses to compare a larger number
    with them (SQLite one beyond 64 bits), which must be a 404, not a server error."""
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as client:
        for n in (2**31, 2**63, 10**30):
            for path in (f"/raw/{n}", f"/raw/{n}/page", f"/articles/{n}", f"/articles/{n}/diff",
                         f"/articles/{n}/versions/1"):
                assert client.get(path).status_code == 404, path
        assert client.get(f"/api/runs/{2**31}").status_code == 404  # within the API's documented range
        assert client.get(f"/api/runs/{2**63}").status_code == 422  # beyond it
        assert client.get("/api/runs/1").status_code == 200  # the control: a run that is there


def test_publication_days_are_iso_days_as_the_schema_says(small):
    """Schemathesis found `published_to=-2.7e-264` answered 200: pydantic reads a number as a Unix time."""
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        for value in ("-2.7469651196321784e-264", "1700000000", "2025-5-7", "2025-05-07T00:00", "yesterday"):
            assert client.get("/api/articles", params={"published_to": value}).status_code == 422, value
            assert client.get("/api/articles", params={"published_from": value}).status_code == 422, value
        assert client.get("/api/articles", params={"published_from": "2025-05-07",
                                                   "published_to": "2026-02-12"}).status_code == 200
        parameters = client.get("/api/openapi.json").json()["paths"]["/api/articles"]["get"]["parameters"]
        day = next(p for p in parameters if p["name"] == "published_to")["schema"]
        assert {"type": "string", "format": "date"} in day.get("anyOf", [day])


# --- the diff ---------------------------------------------------------------------------

def test_changed_characters_are_marked_inside_a_paragraph():
    old, new = char_segments("今年光伏逆变器出口增长三成。", "今年光伏组件出口增长四成。")
    assert [(s.op, s.text) for s in old if s.op != "equal"] == [("delete", "逆变器"), ("delete", "三")]
    assert [(s.op, s.text) for s in new if s.op != "equal"] == [("insert", "组件"), ("insert", "四")]
    assert "".join(s.text for s in old) == "今年光伏逆变器出口增长三成。"
    old, new = char_segments("完全不同的一段话。", "另起炉灶重写。")
    assert [s.op for s in old] == ["delete"] and [s.op for s in new] == ["insert"]


def test_paragraphs_are_aligned_and_far_ones_folded():
    a = "\n".join(f"第{i}段。" for i in range(10))
    b = a.replace("第5段。", "第5段,有改动。") + "\n新增一段。"
    rows = paragraph_rows(a, b)
    assert [r.kind for r in rows].count("changed") == 1 and rows[-1].kind == "added"
    folded = fold(rows, context=1)
    assert [r.kind for r in folded] == ["folded", "equal", "changed", "equal", "folded", "equal", "added"]
    assert (folded[0].folded, folded[4].folded) == (4, 2)


# --- escaping ---------------------------------------------------------------------------

def test_stored_body_html_is_sanitized_again_on_output():
    dirty = ('<p onclick="x()">正文<script>alert(1)</script><a href="javascript:alert(2)">链接</a>'
             '<img src="http://portal.test/a.png" onerror="x()"><iframe src="http://evil"></iframe></p>')
    clean = str(sanitized_body(dirty))
    assert "<script" not in clean and "onclick" not in clean and "onerror" not in clean
    assert "javascript:" not in clean and "<iframe" not in clean
    assert "正文" in clean and "链接" in clean and 'src="http://portal.test/a.png"' in clean


def test_the_feed_is_valid_xml_whatever_the_titles_hold():
    row = ChangeRow(aid=1, version=2, change="edited", at=T0, title='<b>&"标题"\x0b</b>', channel="行业资讯", run_id=3)
    atom = ElementTree.fromstring(changes_atom([row], "http://127.0.0.1:8080", "中国电源产业网"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = atom.find("a:entry", ns)
    assert entry.find("a:title", ns).text == '[edited] <b>&"标题"</b>'
    assert entry.find("a:link", ns).get("href") == "http://127.0.0.1:8080/articles/1/diff?from=1&to=2"
    # A takedown's link is the timeline page that ends at it, which later versions do not move.
    gone = ChangeRow(aid=1, version=3, change="taken_down", at=T0, title="标题", channel="行业资讯", run_id=4)
    assert change_link("", gone) == "/articles/1?before=4#v3"


def test_chart_labels_are_escaped():
    svg = str(bar_chart("<script>", [("<img onerror=x>", 3), ("b", 0)]))
    assert "<script>" not in svg and "<img" not in svg and "&lt;img onerror=x&gt;: 3" in svg


@pytest.mark.archive
def test_the_runs_page_and_api_show_what_a_run_spent_its_budget_on(small):
    from pipeline.archive import runs

    run_id = runs.start_run(small.engine, "crawl", BASE, {}, job="frequent")
    with session_scope(small.engine) as session:
        from pipeline.archive.models import CrawlRun

        session.get(CrawlRun, run_id).allowance = 70
    runs.finish_run(small.engine, run_id, "succeeded", {
        "downloader/request_count": 70, "budget/spent/list": 5, "budget/spent/robots": 1,
        "budget/spent/new": 3, "budget/spent/revisit": 61, "budget/left/revisit": 9,
        "revisit/planned": 70, "revisit/left_for_budget": 1234, "revisit/left_expected_versions": 0.42})
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        run = client.get(f"/api/runs/{run_id}").json()
        page = client.get("/runs").text
    assert (run["requests"], run["allowance"]) == (70, 70)
    assert run["budget"]["spent"] == {"list": 5, "robots": 1, "new": 3, "revisit": 61}
    assert run["budget"]["left"] == {"revisit": 9}
    assert run["budget"]["revisit"]["left_for_budget"] == 1234
    assert "70 of 70" in page and "spent on revisit" in page and "revisits left for lack of budget" in page
    assert "1,234" in page and "not sent: revisit" in page


@pytest.mark.archive
def test_single_characters_alone_are_a_bounded_scan_and_say_so(small):
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        alone = client.get("/api/articles", params={"q": "伏"}).json()
        assert sorted(i["aid"] for i in alone["items"]) == [101, 103] and alone["bounded"] is True
        beside = client.get("/api/articles", params={"q": "伏 出口"}).json()  # filters an indexed piece's hits
        assert [i["aid"] for i in beside["items"]] == [101] and beside["bounded"] is False
        page = client.get("/", params={"q": "伏"}).text
        assert f"among the newest {SCAN_WINDOW:,}" in page
    assert snippet("光伏车棚", "伏") == [("光", False), ("伏", True), ("车棚", False)]


@pytest.mark.archive
def test_a_total_counted_only_so_far_says_more_than(small, monkeypatch):
    monkeypatch.setattr(search, "COUNT_LIMIT", 1)
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        found = client.get("/api/articles", params={"q": "光伏"}).json()
        page = client.get("/", params={"q": "光伏"}).text
    assert sorted(i["aid"] for i in found["items"]) == [101, 103]  # the page itself is whole
    if BACKEND == "postgres":  # counts only so far, and says so
        assert (found["total"], found["more"]) == (1, True) and "More than 1 articles" in page
    else:  # FTS5 counts from its index, exactly
        assert (found["total"], found["more"]) == (2, False) and "2 articles" in page


@pytest.mark.archive
def test_the_timeline_says_what_changed_without_loading_every_version(small):
    later = T0 + timedelta(days=1)
    small.write(article(101, "光伏逆变器出口增长", ["今年光伏组件出口同比增长三成。", "企业加快海外布局。"], at=later))
    small.write(article(101, "光伏逆变器出口大增", ["今年光伏组件出口同比增长三成。", "企业加快海外布局。"],
                        at=later + timedelta(hours=1)))
    small.write(ArticleGone(f"{BASE}/news/hyzx/2026/0212/101.html", 101, 404, later + timedelta(hours=2), "HTTP 404"))
    with session_scope(small.engine) as session:
        view = queries.article_view(session, 101)
        # Only the current version is loaded whole; the timeline is read without bodies.
        loaded = [o for o in session.identity_map.values() if isinstance(o, ArticleVersion)]
        assert [v.version for v in loaded] == [view.current.version] == [4]
        whole = queries.versions_of(session, view.article)
        expected = [changed_fields(whole[i - 1] if i else None, v) for i, v in enumerate(whole)]
    assert expected == [[], ["published_at", "body"], ["title", "published_at"], []]
    assert [entry.changed for entry in view.timeline.entries] == expected
    assert [entry.change for entry in view.timeline.entries] == [v.change for v in whole]
    assert (view.timeline.total, view.timeline.older, view.timeline.newer) == (4, None, None)


# --- a long history: the timeline a page at a time ---------------------------------------

LONG_AID = 104
LONG_VERSIONS = 2 * queries.TIMELINE_PAGE + 3  # two whole pages and a short one


def long_version(i: int) -> CleanArticle:
    """Version i of a long history: the publication time moves every time (so every write is a new
    version), the title every third, the body every second, the lede every fifth."""
    return article(LONG_AID, f"光伏电站第{i // 3}次更新", [f"正文第{i // 2}稿。", "企业加快海外布局。"],
                   at=T0 + timedelta(hours=i), lede=f"导语{i // 5}")


@pytest.fixture
def long_history(small):
    for i in range(1, LONG_VERSIONS + 1):
        small.write(long_version(i))
    with session_scope(small.engine) as session:
        whole = queries.versions_of(session, queries.article_by_aid(session, LONG_AID))
        expected = {v.version: changed_fields(whole[i - 1] if i else None, v) for i, v in enumerate(whole)}
    assert len(expected) == LONG_VERSIONS
    return small, expected


def _rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="v(\d+)">', page)]


def _changed(page: str) -> dict[int, str]:
    return {int(n): text for n, text in re.findall(r'<tr id="v(\d+)">.*?<td class="changed">([^<]*)</td>', page, re.S)}


def _link(page: str, rel: str) -> str | None:
    found = re.findall(rf'<a rel="{rel}" href="([^"]+)"', page)
    assert len(set(found)) <= 1  # the pager above the table and the one below agree
    return html.unescape(found[0]).split("#")[0] if found else None


@pytest.mark.archive
def test_a_long_history_shows_its_newest_page_and_the_pager_reaches_every_version_once(long_history):
    small, expected = long_history
    page_size = queries.TIMELINE_PAGE
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        first = client.get(f"/articles/{LONG_AID}")
        assert first.status_code == 200
        assert _rows(first.text) == list(range(LONG_VERSIONS - page_size + 1, LONG_VERSIONS + 1))
        assert f"{LONG_VERSIONS} versions" in first.text
        assert f"versions {LONG_VERSIONS - page_size + 1}–{LONG_VERSIONS} of {LONG_VERSIONS}" in first.text
        assert _link(first.text, "next") is None  # nothing newer than the newest page
        # Older, page by page, to version 1; then newer, back to the article's own URL.
        seen, pages, path = [], [], f"/articles/{LONG_AID}"
        while path:
            answer = client.get(path)
            assert answer.status_code == 200, path
            pages.append(path)
            seen += _rows(answer.text)
            for version, text in _changed(answer.text).items():
                # Every entry says what changed from the version before it, the oldest shown
                # included, though that predecessor is on the next page.
                want = ", ".join(expected[version]) or ("first version" if version == 1 else "no content change")
                assert text == want, (path, version)
            path = _link(answer.text, "prev")
        assert sorted(seen) == list(range(1, LONG_VERSIONS + 1)) and len(seen) == len(set(seen))
        assert len(pages) == -(-LONG_VERSIONS // page_size)
        back, path = [], _link(client.get(pages[-1]).text, "next")
        while path:
            back.append(path)
            path = _link(client.get(path).text, "next")
        assert back == pages[-2::-1]  # the same pages, the newest last: the article's own URL
    oldest_shown = LONG_VERSIONS - page_size + 1
    assert "title" in expected[oldest_shown] or "body" in expected[oldest_shown]  # the markers say something


@pytest.mark.archive
def test_the_api_gives_a_long_history_a_page_at_a_time(long_history):
    small, expected = long_history
    page_size = queries.TIMELINE_PAGE
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        detail = client.get(f"/api/articles/{LONG_AID}").json()
        versions = [v["version"] for v in detail["versions"]]
        assert versions == list(range(LONG_VERSIONS - page_size + 1, LONG_VERSIONS + 1))
        assert detail["current"]["changed_fields"] == expected[LONG_VERSIONS]
        seen, items, path = [], detail["versions"], detail["older_versions"]
        while True:
            seen += [v["version"] for v in items]
            assert all(v["changed_fields"] == expected[v["version"]] for v in items), path
            if path is None:
                break
            page = client.get(path).json()
            assert page["total"] == LONG_VERSIONS and page["limit"] == page_size
            items = page["items"]
            path = page["older"] and f"/api/articles/{LONG_AID}/versions?before={page['older']}"
        assert sorted(seen) == list(range(1, LONG_VERSIONS + 1)) and len(seen) == len(set(seen))
        # Small pages, walked older and back newer: consecutive, each version once, each marker right.
        pages, params = [], {"limit": 7}
        while True:
            page = client.get(f"/api/articles/{LONG_AID}/versions", params=params).json()
            pages.append([v["version"] for v in page["items"]])
            assert all(v["changed_fields"] == expected[v["version"]] for v in page["items"])
            if page["older"] is None:
                break
            params = {"limit": 7, "before": page["older"]}
        assert sorted(sum(pages, [])) == list(range(1, LONG_VERSIONS + 1))
        assert all(p == list(range(p[0], p[-1] + 1)) for p in pages)
        newer = client.get(f"/api/articles/{LONG_AID}/versions", params={"limit": 7, "before": pages[-1][-1] + 1}).json()
        while newer["newer"] is not None:
            newer = client.get(f"/api/articles/{LONG_AID}/versions", params={"limit": 7, "before": newer["newer"]}).json()
        assert newer["items"][-1]["version"] == LONG_VERSIONS


@pytest.mark.archive
def test_bad_timeline_positions_are_refused_not_answered_with_another_page(small):
    """A malformed position is a 400 (the page) or 422 (the API, as its schema says), one the article
    does not have a 404: never a server error, never silently some other versions."""
    small.write(article(101, "光伏逆变器出口增长", ["今年光伏组件出口同比增长三成。"], at=T0 + timedelta(days=1)))
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as client:
        assert _rows(client.get("/articles/101?before=2").text) == [1]
        assert _rows(client.get("/articles/101?before=3").text) == [1, 2]
        for before in ("abc", "-1", "1.5", "２", "99999999999999999999999", "<script>alert(1)</script>", ""):
            answer = client.get("/articles/101", params={"before": before})
            if before == "":  # an emptied form field is the newest page
                assert answer.status_code == 200
                continue
            assert answer.status_code == 400, before
            assert "not a version number" in answer.text and "<script>alert" not in answer.text
        for before in ("0", "1", "4", "2147483648"):
            answer = client.get("/articles/101", params={"before": before})
            assert answer.status_code == 404 and "has no versions before" in answer.text, before
        assert client.get("/articles/999?before=2").status_code == 404
        for params in ({"before": "abc"}, {"before": 1}, {"before": -5}, {"before": 2**31}, {"limit": 0},
                       {"limit": 201}, {"limit": "x"}):
            assert client.get("/api/articles/101/versions", params=params).status_code == 422, params
        for before in (4, 2**31 - 1):
            answer = client.get("/api/articles/101/versions", params={"before": before})
            assert answer.status_code == 404 and "has no versions before" in answer.json()["detail"]
        assert client.get("/api/articles/999/versions", params={"before": 2}).status_code == 404
        assert [v["version"] for v in client.get("/api/articles/101/versions", params={"before": 3}).json()["items"]] == [1, 2]


@pytest.mark.archive
def test_the_bounded_scan_looks_only_at_the_newest_window(small, monkeypatch):
    """On PostgreSQL the window is a bound on (published_at, id) and the LIKEs a correlated test, so
    only the window's bodies are read (every open version's were: 230 ms at 20,000, bench/scale)."""
    monkeypatch.setattr(search, "SCAN_WINDOW", 2)  # 101 and 102 are the newest two
    with session_scope(small.engine) as session:
        found = queries.list_articles(session, queries.ArticleFilter(q="伏"), ZoneInfo("Asia/Shanghai"))
        assert [row.aid for row in found.items] == [101] and found.total == 1 and found.bounded
        monkeypatch.setattr(search, "SCAN_WINDOW", 3)
        found = queries.list_articles(session, queries.ArticleFilter(q="伏"), ZoneInfo("Asia/Shanghai"))
        assert [row.aid for row in found.items] == [101, 103] and found.total == 2


@pytest.mark.archive
def test_whole_archive_counts_follow_every_new_article_and_version(small):
    """The channel counts (and the unsearched list's totals from them) and the change totals are
    kept between requests but counted again after any write: a new article, an edit that moves an
    article to another channel, a takedown."""
    with TestClient(create_app(open_readonly(small.url)), base_url="http://127.0.0.1") as client:
        def counts():
            changes = {kind: client.get("/api/changes", params={"kind": kind}).json()["total"]
                       for kind in ("edited", "taken_down")}
            channels = {c["name"]: c["articles"] for c in client.get("/api/channels").json()}
            # The list's total without a search, of all or of one channel, is read from the same counts.
            assert client.get("/api/articles").json()["total"] == sum(channels.values())
            assert {name: client.get("/api/articles", params={"channel": name}).json()["total"]
                    for name in channels} == channels
            return channels, changes

        assert counts() == ({"行业资讯": 3}, {"edited": 0, "taken_down": 0})
        assert counts() == ({"行业资讯": 3}, {"edited": 0, "taken_down": 0})
        small.write(article(104, "氢能重卡示范运营", ["首批氢能重卡投入示范运营。"], at=T0 + timedelta(days=1)))
        assert counts() == ({"行业资讯": 4}, {"edited": 0, "taken_down": 0})
        moved = article(104, "氢能重卡示范运营", ["首批氢能重卡投入示范运营。", "新增一段。"], at=T0 + timedelta(days=2))
        moved.channel = "企业动态"
        small.write(fingerprint(moved))
        assert counts() == ({"行业资讯": 3, "企业动态": 1}, {"edited": 1, "taken_down": 0})
        assert "企业动态 (1)" in client.get("/").text
        small.write(ArticleGone(f"{BASE}/news/hyzx/2026/0212/102.html", 102, 404, T0 + timedelta(days=3), "HTTP 404"))
        assert counts()[1] == {"edited": 1, "taken_down": 1}
        assert client.get("/api/changes").json()["total"] == 2
        runs_page = client.get("/runs").text
        assert "<li><strong>1</strong> taken down</li>" in runs_page
        assert "<li><strong>1</strong> edited articles</li>" in runs_page


@pytest.mark.archive
def test_the_crawl_knows_which_listed_aids_the_archive_holds_from_one_read(small):
    from pipeline.archive.queries import archived_aids
    from spiders.walk import SortedAids

    with session_scope(small.engine) as session:
        held = SortedAids(archived_aids(session))
    assert list(held.held) == [101, 102, 103]
    assert held([100, 101, 103, 104, 102]) == {101, 102, 103}
    assert held([]) == set() and held([0, 99, 1_000_000]) == set()
    small.write(article(104, "氢能", ["氢能示范项目启动。"]))
    assert held([104]) == set()  # read once: an article archived since is the crawl's own
