"""The web archive browser end to end: a real crawl of the replica, the real `portal-archive web`
command, headless Chromium (Debian's, driven by Playwright) and Schemathesis over loopback.

One archive for the module: a replica crawled, changed by a round of portal
edits, takedowns and republications, crawled again. One article of it is
hostile twice over: its text holds markup that the portal escapes (so the
archive holds literal `<script>` text), and a proxy in front of the replica
puts live markup into its page (script elements, event handlers,
`javascript:` links), which the crawler fetches and stores as the raw page.
A second article's stored body HTML is tampered with after the crawl, as if
written before sanitizing, to prove the browser sanitizes again on output.
Every payload would log "PWNED" or open a dialog if it ever ran.

The archive is on the backend under test (marked `archive`: SQLite, then PostgreSQL).
"""
from __future__ import annotations

import copy
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.conftest import IN_CI, archive_contents, cli, export, new_database, query, start_site

# Run once, on SQLite: what it checks does not depend on the database (the PostgreSQL pass
# repeats the tests whose outcome does: writes, queries, leases, the budget's ledger, refusals).

ARTICLES = 240
SEED = 5
CHANGES = {"edits": 12, "takedowns": 6, "republish": 3, "new": 5}
DEFECTS = {"no_body": 1, "bad_bytes": 1}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output"

HOSTILE_TITLE = '<script>alert("title")</script>危险标题<img src=x onerror="console.log(\'PWNED:title\')">'
HOSTILE_LEDE = '导语<a href="javascript:console.log(\'PWNED:lede\')">点我</a><svg onload=alert(1)>'
HOSTILE_PARAGRAPH = ('光伏逆变器<script>console.log("PWNED:text-script");alert("text")</script>'
                     '<b onmouseover="console.log(\'PWNED:text-handler\')">悬停</b>'
                     '<a href="javascript:alert(\'text-link\')">恶意链接</a>结束')
# Live markup the proxy puts into the page the crawler fetches.
LIVE_HEAD = '<script>console.log("PWNED:head-script");alert("head")</script>'
LIVE_BODY = ('<p onclick="console.log(\'PWNED:onclick\')" onmouseover="console.log(\'PWNED:onmouseover\')">'
             '危险段落测试<script>console.log("PWNED:body-script");window.__pwned="body-script"</script>'
             '<a href="javascript:console.log(\'PWNED:js-link\')">点击链接</a>'
             '<img src="x" onerror="console.log(\'PWNED:onerror\');window.__pwned=\'onerror\'">'
             '<iframe src="javascript:console.log(\'PWNED:iframe\')"></iframe>'
             '<svg onload="console.log(\'PWNED:svg\')"></svg>结束</p>\n')
TAMPER = ('<script>console.log("PWNED:stored-script")</script>'
          '<p onclick="console.log(\'PWNED:stored-onclick\')">篡改<img src=x onerror="console.log(\'PWNED:stored-img\')">'
          '<a href="javascript:console.log(\'PWNED:stored-link\')">链接</a></p>')
# Runs first in every page and frame: any dialog or flagged call is recorded.
HOOK = """
window.__executed = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = (...args) => { window.__executed.push(name + ":" + args.join(" ")); };
}
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


# --- the archive ---------------------------------------------------------------------

class HostileProxy:
    """The replica behind a proxy that puts live markup into one article's page."""

    def __init__(self, upstream_port: int, hostile_aid: int):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.forward(self)

        self.upstream_port = upstream_port
        self.hostile = re.compile(rf"/{hostile_aid}\.html$|[?&]aid={hostile_aid}(&|$)")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        passed = {k: v for k, v in handler.headers.items()
                  if k.lower() in ("user-agent", "accept", "if-none-match", "if-modified-since")}
        upstream.request("GET", handler.path, headers=passed)
        answer = upstream.getresponse()
        body = answer.read()
        upstream.close()
        if answer.status == 200 and self.hostile.search(handler.path):
            page = body.decode("gb18030")
            page = page.replace("<head>", "<head>" + LIVE_HEAD, 1)
            page = page.replace("<!-- content begin -->\n", "<!-- content begin -->\n" + LIVE_BODY, 1)
            body = page.encode("gb18030")
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Archive:
    db: str
    db_file: Path | None  # None on PostgreSQL
    report: dict
    hostile: int
    tampered: int
    current: dict  # aid -> export row (current versions)
    versions: list  # every version, as exported


def touched_by(state, **changes) -> set[int]:
    """The aids a mutation round would change: a round's choices depend only on the state and seed."""
    from replica import mutate

    report = mutate(copy.deepcopy(state), **changes)
    return {int(a) for key in ("edited", "taken_down", "republished") for a in report[key]} | \
        {int(o) for o in report["republished"].values()}


def crawl(base_url: str, db: str) -> None:
    cli("crawl", "--base-url", base_url, "--db", db, "--revisit", "all",
        env={"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})


@pytest.fixture(scope="module")
def archive(request, tmp_path_factory) -> Archive:
    from replica import save_state

    root = tmp_path_factory.mktemp("web")
    site = start_site(root / "site", ARTICLES, seed=SEED, defects=DEFECTS)
    proxy = None
    try:
        state = site.state()
        touched = touched_by(state, seed=SEED, **CHANGES)
        quiet = [aid for aid, a in sorted(state.articles.items())
                 if aid not in touched and a.live and a.defect is None]
        hostile, tampered = quiet[len(quiet) // 3], quiet[2 * len(quiet) // 3]
        article = state.articles[hostile]
        article.title, article.lede = HOSTILE_TITLE, HOSTILE_LEDE
        article.paragraphs.insert(0, HOSTILE_PARAGRAPH)
        save_state(state, site.dir)

        proxy = HostileProxy(site.server.port, hostile)
        db = new_database(request, root)
        db_file = Path(db.removeprefix("sqlite:///")) if db.startswith("sqlite") else None
        crawl(proxy.url, db)
        report = site.mutate(seed=SEED, **CHANGES)
        state = site.state()
        state.articles[hostile].paragraphs[0] = HOSTILE_PARAGRAPH.replace("光伏逆变器", "光伏并网逆变器<i onclick=alert(2)>")
        save_state(state, site.dir)
        crawl(proxy.url, db)

        query(db, "UPDATE article_versions SET body_html = body_html || ? WHERE valid_to IS NULL AND "  # a row as if
              "article_id = (SELECT id FROM articles WHERE aid = ?)", TAMPER, tampered)  # written before sanitizing
        current = {r["aid"]: r for r in export(db)}
        versions = export(db, "--all-versions")
        yield Archive(db, db_file, report, hostile, tampered, current, versions)
    finally:
        if proxy is not None:
            proxy.stop()
        site.server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(archive):
    """`portal-archive web` itself, in its own process, on a loopback port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "web", "--port", str(port),
                                "--db", archive.db], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"web server did not start: {process.stdout.read()}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the browser -----------------------------------------------------------------------

class Browser:
    """Headless Chromium with a fresh profile; records console messages and dialogs of every frame."""

    def __init__(self, playwright, profile_dir: Path, bypass_csp: bool = False):
        self.context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp, locale="zh-CN")
        self.context.add_init_script(HOOK)
        self.console: list[str] = []
        self.dialogs: list[str] = []
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("console", lambda m: self.console.append(m.text))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, url: str):
        response = self.page.goto(url, wait_until="load")
        self.page.wait_for_timeout(50)  # let any late handler (image error, frame load) fire
        return response

    def shot(self, name: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture(scope="module")
def playwright():
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    b = Browser(playwright, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.context.close()


def unique_phrase(current: dict, exclude: set[int], length: int = 6) -> tuple[int, str]:
    """A phrase of Chinese characters that occurs in exactly one article's current text."""
    texts = {aid: "\n".join(filter(None, (r["title"], r["lede"], r["body"]))) for aid, r in current.items()}
    for aid in sorted(texts):
        if aid in exclude or current[aid]["status"] != "live" or current[aid]["duplicate_of"]:
            continue
        body = current[aid]["body"]
        for at in range(0, max(0, len(body) - length), 7):
            phrase = body[at:at + length]
            if re.fullmatch(r"[\u4e00-\u9fff]+", phrase) and \
                    sum(phrase in t for t in texts.values()) == 1:
                return aid, phrase
    raise AssertionError("no unique phrase in the archive")


# --- done means (1): search, diff, change feed, charts ------------------------------------

def test_search_for_a_chinese_phrase_finds_the_article(archive, server, browser):
    aid, phrase = unique_phrase(archive.current, {archive.hostile, archive.tampered})
    browser.goto(server + "/")
    browser.page.fill("header form.quick-search input[name=q]", phrase)
    browser.page.press("header form.quick-search input[name=q]", "Enter")
    browser.page.wait_for_load_state("load")
    assert browser.page.inner_text("#result-count").startswith("1 article")
    links = browser.page.locator("table.articles tbody a[href^='/articles/']")
    assert links.first.get_attribute("href") == f"/articles/{aid}"
    assert links.first.inner_text() == archive.current[aid]["title"]
    marks = browser.page.locator("table.articles .snippet mark").all_inner_texts()
    assert phrase in marks
    browser.shot("web-search")
    # The same search through the API, and a two-character search (the LIKE fallback) finding it too.
    api = json.loads(urllib.request.urlopen(f"{server}/api/articles?q={urllib.parse.quote(phrase)}").read())
    assert [item["aid"] for item in api["items"]] == [aid]
    two = phrase[:2]
    found, page = set(), 1
    while True:
        got = json.loads(urllib.request.urlopen(
            f"{server}/api/articles?per_page=200&page={page}&q={urllib.parse.quote(two)}").read())
        found |= {item["aid"] for item in got["items"]}
        if page * 200 >= got["total"]:
            break
        page += 1
    expected = {a for a, r in archive.current.items()
                if two in "\n".join(filter(None, (r["title"], r["lede"], r["body"])))}
    assert found == expected and aid in found


def _typo(archive) -> tuple[int, str, str]:
    """An edited article whose edit changed one character: (aid, old character, new character)."""
    for aid, kind in archive.report["edited"].items():
        if kind != "typo":
            continue
        v1, v2 = [r for r in archive.versions if r["aid"] == int(aid)][:2]
        old, new = v1["body"], v2["body"]
        at = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
        if old[at + 1:] == new[at + 1:]:
            return int(aid), old[at], new[at]
    raise AssertionError("the round of changes had no typo edit")


def test_diff_page_highlights_the_edited_characters(archive, server, browser):
    aid, old_char, new_char = _typo(archive)
    browser.goto(f"{server}/articles/{aid}")
    browser.page.click("#v2 a:text('diff')")
    browser.page.wait_for_load_state("load")
    assert browser.page.url.endswith(f"/articles/{aid}/diff?from=1&to=2")
    changed = browser.page.locator("table.diff tr.para.changed")
    assert changed.count() == 1
    assert changed.locator("td.old del").all_inner_texts() == [old_char]
    assert changed.locator("td.new ins").all_inner_texts() == [new_char]
    # Only the edited character is marked: the rest of the paragraph reads the same on both sides.
    old_text, new_text = changed.locator("td.old").inner_text(), changed.locator("td.new").inner_text()
    assert old_text.replace(old_char, "", 1) == new_text.replace(new_char, "", 1)
    assert browser.page.locator("del").first.evaluate("e => getComputedStyle(e).backgroundColor") != \
        "rgba(0, 0, 0, 0)"
    changed.scroll_into_view_if_needed()
    browser.shot("web-diff")


def test_change_feed_lists_the_takedowns(archive, server, browser):
    taken = {int(a) for a in archive.report["taken_down"]}
    browser.goto(f"{server}/changes?kind=taken_down")
    rows = browser.page.locator("table#changes tbody tr.kind-taken_down")
    listed = {int(h.rsplit("/", 1)[1]) for h in rows.locator("td:nth-child(3) a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")}
    assert listed == taken
    assert set(rows.locator(".badge").all_inner_texts()) == {"taken down"}
    browser.shot("web-changes")
    # All kinds together on the page, and the Atom feed.
    browser.goto(f"{server}/changes")
    assert browser.page.locator("table#changes tbody tr.kind-edited").count() == len(archive.report["edited"]) + 1
    feed = urllib.request.urlopen(f"{server}/feeds/changes.atom")
    assert feed.headers["Content-Type"].startswith("application/atom+xml")
    atom = ElementTree.fromstring(feed.read())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = atom.findall("a:entry", ns)
    takedowns = {int(re.search(r"/articles/(\d+)", e.find("a:link", ns).get("href")).group(1))
                 for e in entries if e.find("a:category", ns).get("term") == "taken_down"}
    assert takedowns == taken
    assert all(e.find("a:updated", ns).text.endswith("Z") for e in entries)


def test_runs_page_shows_its_charts(archive, server, browser):
    browser.goto(f"{server}/runs")
    page = browser.page
    assert page.locator("table#runs tbody tr[id^=run-]").count() == 2
    published = page.locator("#chart-published svg.chart rect.bar")
    assert published.count() == 90
    assert any(float(h) > 0 for h in published.evaluate_all("bars => bars.map(b => b.getAttribute('height'))"))
    edit_titles = page.locator("#chart-edits svg.chart rect.bar title").all_text_contents()
    assert sum(int(t.rsplit(": ", 1)[1]) for t in edit_titles) == len(archive.report["edited"]) + 1
    assert page.locator("#chart-outcomes svg.chart rect.status").count() == 2
    # Drawn, not just present: the charts have a size on the page.
    box = page.locator("#chart-outcomes svg.chart").bounding_box()
    assert box["width"] > 500 and box["height"] > 100
    browser.shot("web-runs", full_page=True)


# --- done means (2): hostile content is inert in every view ---------------------------------

def hostile_views(archive, server) -> list[str]:
    raw_ids = [r[0] for r in query(
        archive.db, "SELECT raw_page_id FROM article_versions v JOIN articles a ON a.id = v.article_id "
        "WHERE a.aid = ? ORDER BY v.version", archive.hostile)]
    quarantined = [r[0] for r in query(archive.db, "SELECT raw_page_id FROM quarantine WHERE raw_page_id IS NOT NULL "
                                                   "ORDER BY id")]
    aid, other = archive.hostile, archive.tampered
    views = ["/", "/?q=" + urllib.parse.quote("<script>"), "/?q=" + urllib.parse.quote("危险段落"),
             "/?q=" + urllib.parse.quote("<img src=x onerror=alert(1)>"),
             f"/articles/{aid}", f"/articles/{aid}?before=2", f"/articles/{aid}/versions/1", f"/articles/{aid}/versions/2",
             f"/articles/{aid}/diff?from=1&to=2", f"/articles/{aid}/diff?from=1&to=2&full=1",
             f"/articles/{other}", f"/articles/{other}/versions/1",
             "/changes", "/runs", "/quarantine", "/feeds/changes.atom",
             f"/api/articles/{aid}", f"/api/articles/{other}", f"/api/articles/{aid}/diff",
             f"/api/articles/{aid}/versions", f"/api/articles/{aid}/versions?before=2&limit=1",
             "/api/articles?q=" + urllib.parse.quote("<script>")]
    views += [f"/raw/{raw}" for raw in raw_ids + quarantined[:1]]
    return views


def assert_inert(b: Browser, where: str):
    page = b.page
    assert not [m for m in b.console if "PWNED" in m], where
    assert b.dialogs == [], where
    # Only the top document is asked: a sandboxed frame runs no script at all, not even
    # the browser driver's (asking it would wait forever). Its console still reaches us.
    assert page.evaluate("window.__executed") == [], where
    assert page.evaluate("window.__pwned") is None, where
    found = page.evaluate("""() => ({
        scripts: document.querySelectorAll("script").length,
        handlers: [...document.querySelectorAll("*")].flatMap(e => [...e.attributes])
                    .filter(a => a.name.toLowerCase().startsWith("on")).map(a => a.name),
        jsLinks: [...document.querySelectorAll("[href],[src],[action],[formaction]")]
                    .map(e => e.getAttribute("href") || e.getAttribute("src") || e.getAttribute("action") || "")
                    .filter(u => /^\\s*javascript:/i.test(u)),
        frames: [...document.querySelectorAll("iframe")].map(f => f.getAttribute("sandbox")),
    })""")
    assert found["scripts"] == 0, where
    assert found["handlers"] == [], where
    assert found["jsLinks"] == [], where
    assert all(s == "" for s in found["frames"]), where  # every frame fully sandboxed


def test_hostile_article_is_inert_text_in_every_view(archive, server, browser, playwright, tmp_path_factory):
    views = hostile_views(archive, server)
    # With the pages' CSP, and again with the CSP switched off in the browser: escaping and
    # sanitizing alone must already keep everything inert.
    permissive = Browser(playwright, tmp_path_factory.mktemp("chromium-no-csp"), bypass_csp=True)
    try:
        for b in (browser, permissive):
            b.console.clear()
            for path in views:
                answer = b.goto(server + path)
                assert answer.status == 200, path
                if path.startswith("/articles/"):
                    b.page.mouse.move(300, 300)
                    for paragraph in b.page.locator(".body p").all()[:3]:
                        paragraph.hover()
                        paragraph.click(force=True)
                assert_inert(b, path)
    finally:
        permissive.context.close()

    # The payloads are there, shown as text.
    browser.goto(f"{server}/articles/{archive.hostile}")
    title = browser.page.inner_text("#article-title")
    assert "<script>" in title and "onerror" in title
    body = browser.page.inner_text("#article-body")
    assert '<script>console.log("PWNED:text-script")' in body
    assert "危险段落测试" in body and "点击链接" in body  # the live markup's text survives, its code does not
    browser.page.locator("#article-body").scroll_into_view_if_needed()
    browser.shot("web-hostile-article")
    # The raw page as fetched (real <script> elements): escaped source, and a sandboxed frame.
    browser.goto(f"{server}/articles/{archive.hostile}")
    browser.page.click("#v1 a:text('raw page')")
    browser.page.wait_for_load_state("load")
    assert LIVE_HEAD in browser.page.inner_text("#raw-source")
    browser.page.wait_for_timeout(200)
    assert_inert(browser, "raw page view")
    browser.shot("web-hostile-raw", full_page=False)
    # The raw document opened alone: its CSP sandbox still forbids every script.
    raw_link = browser.page.locator("iframe.raw").get_attribute("src")
    browser.console.clear()
    answer = browser.goto(server + raw_link)
    assert "sandbox" in answer.headers["content-security-policy"]
    browser.page.wait_for_timeout(200)
    assert not [m for m in browser.console if "PWNED" in m]
    assert browser.dialogs == []
    # Output sanitizing: the tampered row's script and handlers are gone, its text stays.
    browser.goto(f"{server}/articles/{archive.tampered}")
    assert "篡改" in browser.page.inner_text("#article-body")


def test_pages_forbid_scripts_and_framing(server):
    answer = urllib.request.urlopen(server + "/")
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


# --- done means (3): the API against its own OpenAPI document -------------------------------

def test_api_passes_schemathesis(server):
    """Every operation of /api/openapi.json, bounded examples, over loopback only."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(f"{server}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    failures, calls = [], []
    for operation in operations:
        @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        # Valid requests (answered as documented) and invalid ones (rejected with a 4xx).
        @given(case=st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                              operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)))
        def check(case):
            calls.append(case.operation.label)
            case.call_and_validate()

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # collect them all, then report
            failures.append(f"{operation.label}: {exc}")
    assert failures == []
    assert len(calls) >= 10 * len(operations) // 2, "too few examples ran to mean anything"


def test_api_matches_the_archive(archive, server):
    aid = archive.hostile
    detail = json.loads(urllib.request.urlopen(f"{server}/api/articles/{aid}").read())
    assert detail["current_version"] == 2 and [v["change"] for v in detail["versions"]] == ["created", "edited"]
    assert detail["older_versions"] is None  # two versions: one page holds them
    assert detail["current"]["title"] == HOSTILE_TITLE
    assert_inert_html(detail["current"]["body_html"])
    assert "&lt;script&gt;" in detail["current"]["body_html"]  # the text that looks like code, escaped
    diff = json.loads(urllib.request.urlopen(f"{server}/api/articles/{aid}/diff?from=1&to=2").read())
    inserted = "".join(s["text"] for row in diff["body"] for s in (row["new"] or []) if s["op"] == "insert")
    assert "并网" in inserted
    runs = json.loads(urllib.request.urlopen(f"{server}/api/runs").read())
    assert [r["status"] for r in runs["items"]] == ["succeeded", "succeeded"]
    copy_aid, original = next(iter(archive.report["republished"].items()))
    copied = json.loads(urllib.request.urlopen(f"{server}/api/articles/{copy_aid}").read())
    assert copied["duplicate_of"]["aid"] == original
    orig = json.loads(urllib.request.urlopen(f"{server}/api/articles/{original}").read())
    assert int(copy_aid) in [d["aid"] for d in orig["duplicates"]]


def assert_inert_html(fragment: str) -> None:
    from lxml import html

    elements = list(html.fragment_fromstring(fragment, create_parent="div").iter())
    assert not [e for e in elements if e.tag in ("script", "iframe", "svg", "style")]
    assert not [(e.tag, a) for e in elements for a in e.attrib if a.lower().startswith("on")]
    assert not [e for e in elements if e.get("href", "").strip().lower().startswith("javascript:")]


def test_the_server_never_wrote_to_the_archive(archive, server):
    """The web process opened the archive read-only: the SQLite file's bytes are what the crawl left; on
    PostgreSQL every row is, with the transaction that wrote it."""
    if archive.db_file is not None:
        state = lambda: archive.db_file.stat().st_mtime_ns  # noqa: E731
    else:
        state = lambda: archive_contents(archive.db)  # noqa: E731
    before = state()
    for path in ("/", "/runs", f"/articles/{archive.hostile}", "/api/articles?q=%E5%85%89%E4%BC%8F"):
        urllib.request.urlopen(server + path).read()
    assert state() == before

