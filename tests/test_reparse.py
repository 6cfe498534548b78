"""`portal-archive reparse`: after a profile fix, the stored pages are read again, never fetched.

The replica serves 30 % of its articles redesigned; a crawl archives them
through the fallback. Then the replica is stopped for good, the profile is
fixed for the redesign, and `reparse` rewrites what changed.
"""
import json
import socket
from pathlib import Path

import pytest

from replica import DriftPlan, ReplicaServer, expected_articles, generate, load_state, save_state
from tests.conftest import cli, export, new_database, query

pytestmark = pytest.mark.archive

COMPARED = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source", "origin_source", "tags")
PROFILE = Path(__file__).resolve().parents[1] / "pipeline" / "reading" / "profiles" / "cpsia.toml"
# The profile fix an operator would write after `portal-archive extract` showed the redesign's markup.
FIX = {
    'title = [".viewbox .title h2", ".viewbox h2", ".title h2"]':
        'title = [".viewbox .title h2", ".viewbox h2", ".title h2", "h1.news-title"]',
    'published = [".info .time", ".viewbox .info"]':
        'published = [".info .time", ".viewbox .info", ".news-meta span:contains(\'发布时间\')"]',
    'lede = [".intro"]': 'lede = [".intro", ".summary"]',
    'body = ["#article-content", ".viewbox .content"]': 'body = ["#article-content", ".viewbox .content", ".news-body"]',
    'editor = [".editor"]': 'editor = [".editor", ".news-meta span:contains(\'责任编辑\')"]',
    'source = [".source"]': 'source = [".source", ".news-meta span:contains(\'来源\')"]',
    'tags = [".tags a", ".tags"]': 'tags = [".tags a, .keywords a", ".tags, .keywords"]',
    'breadcrumb_channel = ".place a:nth-of-type(2)"':
        'breadcrumb_channel = ".place a:nth-of-type(2), .crumbs a:nth-of-type(2)"',
    'lede = ["导语"]': 'lede = ["导语", "摘要"]',
}


def fixed_profile(directory: Path) -> Path:
    text = PROFILE.read_text(encoding="utf-8")
    for old, new in FIX.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / "cpsia-fixed.toml"
    path.write_text(text, encoding="utf-8")
    return path


def dead_url() -> str:
    """An address nothing listens on: any fetch would fail."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def archived(request, tmp_path_factory):
    """A crawl of a redesigned-in-part replica, whose server is then stopped for good."""
    root = tmp_path_factory.mktemp("reparse")
    save_state(generate(200, seed=17, defects={"no_body": 1}), root / "site")
    drift = DriftPlan(0.3, seed=3)
    server = ReplicaServer(root / "site", drift=drift).start()
    db = db_file = new_database(request, root, "archive")
    try:
        crawl = cli("crawl", "--base-url", server.url, "--db", db, check=False,
                    env={"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})
        truth = expected_articles(load_state(root / "site"), server.url)
    finally:
        server.stop()
    assert "degraded" in crawl.stdout
    env = {"PORTAL_ARCHIVE_PROFILE": str(fixed_profile(root)), "PORTAL_ARCHIVE_BASE_URL": dead_url()}
    before = {r["aid"]: r for r in export(db)}
    first = cli("reparse", "--db", db, env=env)
    return {"db": db, "db_file": db_file, "env": env, "truth": truth, "drift": drift, "before": before,
            "first": first, "after": export(db, "--all-versions")}


def open_methods(db_file) -> dict[int, str]:
    return dict(query(db_file, "select a.aid, v.extraction from article_versions v join articles a "
                               "on a.id = v.article_id where v.valid_to is null"))


def test_reparse_rewrites_the_fallback_versions_with_the_fixed_profile(archived):
    truth, drift = archived["truth"], archived["drift"]
    redesigned = {aid for aid, e in truth.items() if drift.applies(aid) and not e["quarantined"]}
    changes = {}
    for row in archived["after"]:
        changes.setdefault(row["aid"], []).append(row["change"])
    reread = {aid for aid, kinds in changes.items() if kinds[-1] == "reextracted"}
    assert reread == redesigned, "every fallback reading was replaced, nothing else"
    assert all(kinds == ["created", "reextracted"] for aid, kinds in changes.items() if aid in reread)
    assert all(method == "profile" for method in open_methods(archived["db_file"]).values())
    assert f"{len(redesigned)} reextracted" in archived["first"].stdout
    assert "reparse" in archived["first"].stderr, "progress is shown"


def test_after_reparse_the_archive_equals_ground_truth(archived):
    current = {r["aid"]: r for r in archived["after"] if r["valid_to"] is None}
    wrong = [(aid, k) for aid, e in archived["truth"].items() if not e["quarantined"] for k in COMPARED
             if current[aid][k] != e[k]]
    assert wrong == []


def test_reparse_kept_the_raw_page_and_its_fetch_time(archived):
    rows = query(archived["db_file"], "select a.aid, v.version, v.raw_page_id, v.fetched_at, v.valid_from, "
                                      "v.crawl_run_id from article_versions v join articles a on a.id = v.article_id "
                                      "order by a.aid, v.version")
    by_aid = {}
    for aid, *rest in rows:
        by_aid.setdefault(aid, []).append(rest)
    for versions in by_aid.values():
        if len(versions) == 2:
            (_, raw1, fetched1, from1, run1), (_, raw2, fetched2, from2, run2) = versions
            assert raw1 == raw2 and fetched1 == fetched2 and from2 > from1 and run2 != run1
    kind, status = query(archived["db_file"], "select kind, status from crawl_runs order by id desc limit 1")[0]
    assert (kind, status) == ("reparse", "succeeded")


def test_reparse_again_writes_nothing(archived):
    out = cli("reparse", "--db", archived["db"], "--no-progress", env=archived["env"]).stdout
    assert " 0 reextracted" in out
    assert len(export(archived["db"], "--all-versions")) == len(archived["after"])
    verify = cli("verify", "--db", archived["db"], check=False)
    assert verify.returncode == 0, verify.stdout


def test_reparse_of_one_article_by_method(archived):
    aid = min(a for a, e in archived["truth"].items() if not e["quarantined"])
    out = cli("reparse", "--db", archived["db"], "--article", str(aid), "--method", "fallback", "--no-progress",
              env=archived["env"]).stdout
    assert "1 articles read" in out
    assert open_methods(archived["db_file"])[aid].startswith("fallback:trafilatura-")
    cli("reparse", "--db", archived["db"], "--article", str(aid), "--no-progress", env=archived["env"])
    assert open_methods(archived["db_file"])[aid] == "profile"


def test_reparse_scope_by_channel_and_dates(archived):
    truth = archived["truth"]
    in_channel = sum(1 for e in truth.values() if e["channel"] == "党建园地" and not e["quarantined"])
    out = cli("reparse", "--db", archived["db"], "--channel", "djyd", "--no-progress", "--no-quarantine",
              env=archived["env"]).stdout
    assert f"{in_channel} articles read" in out
    days = sorted(e["published_at"][:10] for e in truth.values() if not e["quarantined"])
    since, until = days[10], days[19]
    in_range = sum(1 for d in days if since <= d <= until)
    out = cli("reparse", "--db", archived["db"], "--since", since, "--until", until, "--no-progress",
              "--no-quarantine", env=archived["env"]).stdout
    assert f"{in_range} articles read" in out


def test_reparse_refuses_bad_input(archived):
    bad = cli("reparse", "--db", archived["db"], "--channel", "nope", env=archived["env"], check=False)
    assert bad.returncode == 2 and "unknown channel" in bad.stderr
    bad = cli("reparse", "--db", archived["db"], "--since", "yesterday", env=archived["env"], check=False)
    assert bad.returncode == 2


def test_quarantined_pages_that_now_read_are_archived(request, tmp_path):
    """Without the fallback a redesign goes to quarantine; the profile fix and reparse bring it back."""
    save_state(generate(60, seed=19), tmp_path / "site")
    server = ReplicaServer(tmp_path / "site", drift=DriftPlan(1.0)).start()
    db = db_file = new_database(request, tmp_path, "archive")
    try:
        crawl = cli("crawl", "--base-url", server.url, "--db", db, check=False,
                    env={"PORTAL_ARCHIVE_EXTRACTION_FALLBACK": "false", "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})
        truth = expected_articles(load_state(tmp_path / "site"), server.url)
    finally:
        server.stop()
    # Nothing archived although the portal listed 60 new articles: a failure, not a success.
    assert crawl.returncode == 1 and "failed" in crawl.stdout and "archived none of them" in crawl.stdout
    assert query(db_file, "select count(distinct aid) from quarantine")[0][0] == 60
    out = cli("reparse", "--db", db, "--no-progress",
              env={"PORTAL_ARCHIVE_PROFILE": str(fixed_profile(tmp_path)), "PORTAL_ARCHIVE_BASE_URL": dead_url()})
    assert "60 quarantined pages read again, 60 archived" in out.stdout
    exported = {r["aid"]: r for r in export(db)}
    assert sorted(exported) == sorted(truth)
    assert all(r["change"] == "created" for r in exported.values())
    assert [(aid, k) for aid, e in truth.items() for k in COMPARED if exported[aid][k] != e[k]] == []
    health = json.loads(query(db_file, "select health from crawl_runs where kind = 'reparse'")[0][0])
    assert health["fallback"] == 0 and health["archived"] == 60
