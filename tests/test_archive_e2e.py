"""The whole archive against a 1,000-article replica over real HTTP (issue: the archive, end to end).

One scenario, run once for the module: crawl, a round of portal changes,
crawl again, crawl a third time with nothing changed. The tests then read
what each step left, through the public export and the CLI.
"""
import time

import pytest

from tests.conftest import BACKEND, cli, export, query, start_site, utcnow

ARTICLES = 1000
CHANGES = {"edits": 50, "takedowns": 20, "republish": 10, "new": 30}
DEFECTS = {"no_body": 3, "bad_bytes": 3}
COMPARED = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source",
            "origin_source", "tags", "status", "duplicate_of")

pytestmark = [pytest.mark.slow, pytest.mark.archive]


def version_rows(db) -> int:
    return query(db, "select count(*) from article_versions")[0][0]


@pytest.fixture(scope="module")
def scenario(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    site = start_site(root / "site", ARTICLES, seed=7, defects=DEFECTS)
    if BACKEND == "postgres":
        db = request.getfixturevalue("postgres_server").create_database()
    else:
        db = f"sqlite:///{root / 'archive.sqlite'}"
    db_file = db
    crawl = lambda: cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all", env={"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})  # noqa: E731
    try:
        s = {"site": site, "db": db, "db_file": db_file}
        s["crawl1"] = crawl()
        s["expected1"] = site.expected()
        s["export1"] = {r["aid"]: r for r in export(db)}
        s["versions1"] = version_rows(db_file)
        time.sleep(0.05)
        s["between"] = utcnow()
        time.sleep(0.05)
        s["report"] = site.mutate(seed=11, **CHANGES)
        site.server.reset_counts()
        s["crawl2"] = crawl()
        s["counts2"] = dict(site.server.request_counts)
        s["expected2"] = site.expected()
        s["export2"] = {r["aid"]: r for r in export(db)}
        s["all_versions2"] = export(db, "--all-versions")
        s["versions2"] = version_rows(db_file)
        s["crawl3"] = crawl()
        s["versions3"] = version_rows(db_file)
        s["export3"] = {r["aid"]: r for r in export(db)}
        yield s
    finally:
        site.server.stop()


def assert_matches_ground_truth(exported: dict, expected: dict):
    archivable = {aid: e for aid, e in expected.items() if not e["quarantined"]}
    assert sorted(exported) == sorted(archivable), "every article archived exactly once"
    mismatches = [(aid, key, exported[aid][key], e[key]) for aid, e in archivable.items()
                  for key in COMPARED if exported[aid][key] != e[key]]
    assert mismatches == []


def test_first_crawl_archives_every_article_exactly_as_the_portal_shows_it(scenario):
    assert_matches_ground_truth(scenario["export1"], scenario["expected1"])
    assert all(r["version"] == 1 and r["change"] == "created" for r in scenario["export1"].values())
    assert scenario["versions1"] == len(scenario["export1"])


def test_mobile_and_tracking_urls_never_make_a_second_article(scenario):
    urls = [r["url"] for r in scenario["export1"].values()]
    assert len(urls) == len(set(urls))
    assert not any("?" in u or "/m/" in u for u in urls)


def test_defective_pages_are_quarantined_with_their_reason(scenario):
    rows = query(scenario["db"], "select aid, reason, raw_page_id from quarantine")
    expected = {aid: e["defect"] for aid, e in scenario["expected1"].items() if e["quarantined"]}
    reasons = {aid: reason for aid, reason, _ in rows}
    assert set(reasons) == set(expected)
    for aid, defect in expected.items():
        assert ("missing body" if defect == "no_body" else "undecodable") in reasons[aid]
    assert all(raw is not None for _, _, raw in rows), "the raw page is kept"
    assert "quarantined" in scenario["crawl1"].stdout


def test_second_crawl_writes_exactly_the_portal_changes(scenario):
    report, rows = scenario["report"], scenario["all_versions2"]
    edited = {int(a) for a in report["edited"]}
    taken = {int(a) for a in report["taken_down"]}
    republished = {int(a): int(o) for a, o in report["republished"].items()}
    new = set(report["new"])
    by_aid = {}
    for row in rows:
        by_aid.setdefault(row["aid"], []).append(row)
    for aid, versions in by_aid.items():
        changes = [v["change"] for v in versions]
        if aid in edited:
            assert changes == ["created", "edited"], aid
        elif aid in taken:
            assert changes == ["created", "taken_down"], aid
            assert versions[-1]["status"] == "taken_down"
        else:
            assert changes == ["created"], aid
    assert new | set(republished) <= set(by_aid)
    written = scenario["versions2"] - scenario["versions1"]
    assert written == len(edited) + len(taken) + len(republished) + len(new)


def test_republications_link_to_their_original(scenario):
    exported = scenario["export2"]
    for copy, original in scenario["report"]["republished"].items():
        assert exported[int(copy)]["duplicate_of"] == exported[int(original)]["url"]
    linked = {aid for aid, r in exported.items() if r["duplicate_of"]}
    assert linked == {int(a) for a in scenario["report"]["republished"]}


def test_after_the_changes_the_archive_still_equals_ground_truth(scenario):
    assert_matches_ground_truth(scenario["export2"], scenario["expected2"])


def test_second_crawl_fetched_each_article_once(scenario, profile):
    fetches_per_aid = {}
    for path, n in scenario["counts2"].items():
        aid = profile.aid_of("http://portal.test" + path)
        if aid is not None:
            fetches_per_aid[aid] = fetches_per_aid.get(aid, 0) + n
    assert len(fetches_per_aid) >= ARTICLES
    broken = {aid for aid, e in scenario["expected2"].items() if e["defect"] == "bad_bytes"}
    assert max(n for aid, n in fetches_per_aid.items() if aid not in broken) == 1
    # A page that looks broken is fetched again (the default three retries) before it is quarantined.
    assert all(fetches_per_aid[aid] == 4 for aid in broken)


def test_third_crawl_with_nothing_changed_writes_nothing(scenario):
    assert scenario["versions3"] == scenario["versions2"]
    assert scenario["export3"] == scenario["export2"]
    assert "0 versions written" in scenario["crawl3"].stdout


def test_export_as_of_before_the_edits_returns_the_old_text(scenario):
    old = {r["aid"]: r for r in export(scenario["db"], "--as-of", scenario["between"].isoformat())}
    # The same rows as the first export, except that versions since superseded now say until when.
    without_end = lambda rows: {a: {k: v for k, v in r.items() if k != "valid_to"} for a, r in rows.items()}  # noqa: E731
    assert without_end(old) == without_end(scenario["export1"])
    changed = {int(a) for a in scenario["report"]["edited"]} | {int(a) for a in scenario["report"]["taken_down"]}
    assert {a for a, r in old.items() if r["valid_to"]} == changed
    for aid in scenario["report"]["edited"]:
        assert old[int(aid)]["content_hash"] != scenario["export2"][int(aid)]["content_hash"]
        assert old[int(aid)]["body"] == scenario["export1"][int(aid)]["body"]


def test_diff_shows_the_edit(scenario):
    report = scenario["report"]
    typo = next(int(a) for a, kind in report["edited"].items() if kind == "typo")
    out = cli("diff", str(typo), "--db", scenario["db"]).stdout
    assert "version 1 (created" in out and "version 2 (edited" in out
    assert "[-" in out and "{+" in out
    added = next(int(a) for a, kind in report["edited"].items() if kind == "paragraph_added")
    out = cli("diff", scenario["export2"][added]["url"] + "?from=timeline", "--db", scenario["db"]).stdout
    assert any(line.startswith("+ ") for line in out.splitlines())
    history = cli("history", str(added), "--db", scenario["db"]).stdout
    assert "v1 created" in history and "v2 edited" in history
