"""The portal redesigns 30 % of its article pages overnight, then switches back.

One scenario over real HTTP: a crawl with the redesign on, then the layout
switched back and a crawl that revisits everything. The crawl must archive
every article (the redesigned ones through the fallback, correctly), mark
the run degraded, and the switch back must record no portal edits.
"""
import json

import pytest

from replica import DriftPlan, ReplicaServer, generate, save_state
from tests.conftest import cli, export, new_database, query

# Run once, on SQLite: what it checks does not depend on the database (the PostgreSQL pass
# repeats the tests whose outcome does: writes, queries, leases, the budget's ledger, refusals).
from tests.quality import body_f1

ARTICLES = 300
DRIFT = DriftPlan(0.3, seed=5)
COMPARED = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source", "origin_source", "tags")
QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def scenario(request, tmp_path_factory):
    from replica import expected_articles, load_state

    root = tmp_path_factory.mktemp("drift")
    save_state(generate(ARTICLES, seed=13, defects={"no_body": 2}), root / "site")
    server = ReplicaServer(root / "site", drift=DRIFT).start()
    db = db_file = new_database(request, root, "archive")
    crawl = lambda: cli("crawl", "--base-url", server.url, "--db", db, "--revisit", "all",  # noqa: E731
                        check=False, env=QUIET)
    try:
        s = {"db": db, "db_file": db_file, "truth": expected_articles(load_state(root / "site"), server.url)}
        s["crawl1"] = crawl()
        s["export1"] = {r["aid"]: r for r in export(db)}
        s["status1"] = cli("status", "--db", db, check=False)
        server.set_drift(None)
        s["crawl2"] = crawl()
        s["export2"] = {r["aid"]: r for r in export(db)}
        s["versions2"] = export(db, "--all-versions")
        s["status2"] = cli("status", "--db", db, check=False)
        yield s
    finally:
        server.stop()


def redesigned(truth: dict) -> set[int]:
    return {aid for aid, e in truth.items() if DRIFT.applies(aid) and not e["quarantined"]}


def test_every_article_is_archived_the_redesigned_ones_through_the_fallback(scenario):
    truth, exported = scenario["truth"], scenario["export1"]
    assert sorted(exported) == sorted(aid for aid, e in truth.items() if not e["quarantined"])
    methods = dict(query(scenario["db_file"], "select a.aid, v.extraction from article_versions v "
                                              "join articles a on a.id = v.article_id where v.version = 1"))
    fallback = {aid for aid, m in methods.items() if m.startswith("fallback:trafilatura-")}
    assert fallback == redesigned(truth)
    assert 0.2 < len(fallback) / len(exported) < 0.4
    assert all(methods[aid] == "profile" for aid in set(exported) - fallback)


def test_redesigned_articles_have_the_right_title_date_and_body(scenario):
    truth, exported = scenario["truth"], scenario["export1"]
    aids = sorted(redesigned(truth))
    scores = [body_f1(exported[aid]["body"], truth[aid]["body"]) for aid in aids]
    mean = sum(scores) / len(scores)
    print(f"body F1 on {len(aids)} redesigned articles: mean {mean:.4f}, min {min(scores):.4f}")
    assert mean >= 0.95 and min(scores) >= 0.9
    for aid in aids:
        assert exported[aid]["title"] == truth[aid]["title"], aid
        assert exported[aid]["published_at"] == truth[aid]["published_at"], aid
    # Not asked of a fallback, and still true on this redesign: every field as the portal shows it.
    wrong = [(aid, k) for aid in aids for k in COMPARED if exported[aid][k] != truth[aid][k]]
    assert wrong == []


def test_pages_without_a_body_are_still_quarantined(scenario):
    reasons = dict(query(scenario["db_file"], "select aid, reason from quarantine"))
    defective = {aid for aid, e in scenario["truth"].items() if e["quarantined"]}
    assert set(reasons) == defective
    assert all("missing body" in reason for reason in reasons.values())


def test_the_run_is_degraded_with_its_health_recorded(scenario):
    crawl = scenario["crawl1"]
    assert crawl.returncode == 1
    assert "degraded" in crawl.stdout and "fallback rate" in crawl.stdout
    status, health = query(scenario["db_file"], "select status, health from crawl_runs order by id limit 1")[0]
    health = json.loads(health)
    assert status == "degraded"
    assert 0.2 < health["fallback_rate"] < 0.4 and health["quarantine_rate"] < 0.05
    assert health["coverage"]["title"] == health["coverage"]["body_text"] == 1.0
    assert health["coverage"]["editor"] == health["coverage"]["source"] == 1.0
    assert any("fallback rate" in reason for reason in health["degraded"])
    assert health["thresholds"]["max_fallback_rate"] == 0.05


def test_status_shows_the_degraded_run_and_fails(scenario):
    status = scenario["status1"]
    assert status.returncode == 1
    assert "1 degraded" in status.stdout and "fallback rate" in status.stdout


def test_switching_back_records_no_portal_edit(scenario):
    changes = [(v["aid"], v["change"]) for v in scenario["versions2"]]
    assert not [c for c in changes if c[1] == "edited"]
    reread = {aid for aid, change in changes if change == "reextracted"}
    assert reread <= redesigned(scenario["truth"])
    methods = dict(query(scenario["db_file"], "select a.aid, v.extraction from article_versions v join articles a "
                                              "on a.id = v.article_id where v.valid_to is null"))
    assert all(method == "profile" for aid, method in methods.items() if aid in reread)
    assert "succeeded" in scenario["crawl2"].stdout and scenario["crawl2"].returncode == 0
    assert scenario["status2"].returncode == 0
    verify = cli("verify", "--db", scenario["db"], check=False)
    assert verify.returncode == 0, verify.stdout


def test_after_switching_back_the_archive_equals_ground_truth(scenario):
    truth, exported = scenario["truth"], scenario["export2"]
    wrong = [(aid, k) for aid, e in truth.items() if not e["quarantined"] for k in COMPARED
             if exported[aid][k] != e[k]]
    assert wrong == []
