"""Backfills and incremental crawls against the replica (issue 3)."""
import random
import signal

import pytest

from tests.conftest import assert_equals_ground_truth, cli, export, new_database, query, spawn_cli, start_site, wait_for

# The tests of what a backfill or crawl writes and reads back (resume, stop, gaps, validators) run on
# both backends (marker `archive`); those of which list pages are walked write what the marked ones do.
pytestmark = pytest.mark.slow
BIG = 1500  # articles: enough for two kills at random points and a resumed end


@pytest.fixture(scope="module")
def big_site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("big") / "site", BIG, seed=21)
    yield site
    site.server.stop()


@pytest.mark.archive
def test_a_backfill_killed_twice_and_started_again_at_once_ends_with_the_same_archive(request, tmp_path, big_site):
    # A lease ttl far longer than the test: only the dead holder's takeover can let the restarts in.
    env = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING", "PORTAL_ARCHIVE_BATCH_SIZE": "100",
           "PORTAL_ARCHIVE_LEASE_TTL_SECONDS": "3600"}
    db = db_file = new_database(request, tmp_path, "killed")
    cli("db", "upgrade", "--db", db)
    rng = random.Random(7)
    for _ in range(2):
        # Die at a random point: after some articles were archived, before the end; start again at once.
        target = query(db_file, "select count(*) from articles")[0][0] + rng.randint(150, 450)
        proc = spawn_cli("backfill", "--base-url", big_site.url, "--db", db, "--no-progress", env=env)
        wait_for(lambda: query(db_file, "select count(*) from articles")[0][0] >= target, 180, interval=0.05,
                 what=f"{target} articles archived")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert query(db_file, "select count(*) from leases where expires_at > datetime('now')")[0][0] == 1
    before = query(db_file, "select count(*) from backfill_articles")[0][0]
    big_site.server.reset_counts()
    # The killed process's lease is still far from expiring; the resumed backfill takes it over at once.
    result = cli("backfill", "--base-url", big_site.url, "--db", db, "--no-progress", env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "taken over at once" in result.stderr
    # Each article once, as the portal shows it: nothing lost or written twice across the kills.
    assert_equals_ground_truth(db, big_site.expected())
    assert {(r["version"], r["change"]) for r in export(db, "--all-versions")} == {(1, "created")}
    # Resuming skipped what the killed runs had archived: those article pages were not fetched again.
    fetched = sum(n for path, n in big_site.server.request_counts.items() if path.endswith(".html")
                  and "/list_" not in path and not path.endswith("/index.html"))
    assert fetched <= BIG - before + 5
    # Both killed runs were recorded as abandoned, with the takeover that found them.
    abandoned = query(db_file, "select error from crawl_runs where status='abandoned'")
    assert len(abandoned) == 2 and all("was taken over by pid" in error for (error,) in abandoned)
    again = cli("backfill", "--base-url", big_site.url, "--db", db, "--no-progress", env=env)
    assert "already done" in again.stdout


def test_backfill_by_date_pages_and_aids(request, tmp_path, big_site):
    expected = big_site.expected()
    db = new_database(request, tmp_path, "a")
    some = sorted(expected)[1000:1010]
    out = cli("backfill", "--base-url", big_site.url, "--db", db, "--aids", f"{some[0]}-{some[-1]}", "--no-progress")
    assert "10 new" in out.stdout
    assert {r["aid"] for r in export(db)} == set(some)
    # --since/--until keeps the articles listed in that window (list dates are the day of publication).
    days = sorted({e["published_at"][:10] for e in expected.values()})
    since, until = days[-30], days[-20]
    cli("backfill", "--base-url", big_site.url, "--db", db, "--since", since, "--until", until, "--no-progress")
    window = {a for a, e in expected.items() if since <= e["published_at"][:10] <= until}
    assert window <= {r["aid"] for r in export(db)}
    # --pages: the first list page of one channel holds its 20 newest articles.
    cli("backfill", "--base-url", big_site.url, "--db", db, "--channel", "djyd", "--pages", "1-1", "--no-progress")
    newest = sorted((a for a, e in expected.items() if e["channel"] == "党建园地"), reverse=True)[:20]
    assert set(newest) <= {r["aid"] for r in export(db)}


def test_backfill_shows_progress(request, tmp_path):
    site = start_site(tmp_path / "site", 300, seed=2)
    try:
        result = cli("backfill", "--base-url", site.url, "--db", new_database(request, tmp_path))
    finally:
        site.server.stop()
    assert "page" in result.stderr and "new 300" in result.stderr
    assert "backfill 1: run 1 succeeded" in result.stdout


@pytest.mark.archive
def test_incremental_crawl_stops_paging_when_nothing_is_new(request, tmp_path):
    site = start_site(tmp_path / "site", 1000, seed=8)
    db = new_database(request, tmp_path)
    try:
        cli("crawl", "--base-url", site.url, "--db", db)
        site.mutate(seed=3, edits=0, takedowns=0, republish=0, new=7)
        site.server.reset_counts()
        out = cli("crawl", "--base-url", site.url, "--db", db, "--incremental", "--revisit", "none").stdout
        lists = sum(n for path, n in site.server.request_counts.items() if "/list_" in path or path.endswith("/"))
    finally:
        site.server.stop()
    assert "7 new" in out
    # Five channels, each read only to its first page with nothing new plus one page of slack.
    assert lists <= 5 * 3


def forget_search_entries(db: str, article_id: int) -> None:
    """Take an article's open version out of the search index, as the archive's write path would."""
    from sqlalchemy import text

    from pipeline.archive.db import make_engine
    from pipeline.archive.search import unindex_versions

    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            unindex_versions(conn, conn.execute(text(
                "select id, title, lede, body_text from article_versions where article_id = :a and valid_to is null"),
                {"a": article_id}).all())
    finally:
        engine.dispose()


@pytest.mark.archive
def test_an_aid_no_list_showed_is_found_by_a_gap_probe(request, tmp_path):
    site = start_site(tmp_path / "site", 300, seed=9)
    db = db_file = new_database(request, tmp_path, "a")
    try:
        cli("crawl", "--base-url", site.url, "--db", db)
        # Pretend the crawl missed one old article (as if list pages had shifted it away).
        aid = query(db_file, "select aid from articles order by aid limit 1 offset 150")[0][0]
        article_id = query(db_file, "select id from articles where aid=?", aid)[0][0]
        forget_search_entries(db, article_id)
        for table, column in (("paragraph_fingerprints", "article_id"), ("article_versions", "article_id"),
                              ("article_checks", "article_id")):
            query(db_file, f"delete from {table} where {column}=?", article_id)
        query(db_file, "update articles set duplicate_of_id=null where duplicate_of_id=?", article_id)
        query(db_file, "delete from articles where id=?", article_id)
        out = cli("crawl", "--base-url", site.url, "--db", db, "--incremental", "--revisit", "none").stdout
    finally:
        site.server.stop()
    assert "1 new" in out
    assert aid in {r["aid"] for r in export(db)}
    stats = query(db_file, "select stats from crawl_runs order by id desc limit 1")[0][0]
    assert '"gaps/found": 1' in stats


@pytest.mark.archive
def test_revisits_send_validators_and_a_304_writes_nothing(request, tmp_path):
    site = start_site(tmp_path / "site", 400, seed=10)
    db = db_file = new_database(request, tmp_path, "a")
    try:
        cli("crawl", "--base-url", site.url, "--db", db)
        versions = query(db_file, "select count(*) from article_versions")[0][0]
        site.server.reset_counts()
        out = cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all", "--incremental").stdout
        conditional = site.server.conditional_counts
        site.server.reset_counts()
        plain = cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all", "--incremental",
                    "--no-conditional").stdout
        unconditional = site.server.conditional_counts
    finally:
        site.server.stop()
    assert conditional["if_none_match"] >= 390 and conditional["not_modified"] >= 300
    assert unconditional["if_none_match"] == 0
    assert "0 versions written" in out and "0 versions written" in plain
    assert query(db_file, "select count(*) from article_versions")[0][0] == versions


def test_a_crawl_while_the_lists_shift_still_archives_every_article(request, tmp_path):
    from replica import ReplicaServer, ShiftPlan, generate, save_state
    from tests.conftest import Site

    save_state(generate(1500, seed=12), tmp_path / "site")
    server = ReplicaServer(tmp_path / "site", shift=ShiftPlan(after_list_requests=12, new=40, takedowns=25, seed=4)).start()
    site = Site(tmp_path / "site", server)
    db = new_database(request, tmp_path)
    try:
        cli("crawl", "--base-url", site.url, "--db", db, "--no-gap-probes")
        assert server.shift_report is not None
        expected = site.expected()
    finally:
        server.stop()
    archived = {r["aid"] for r in export(db)}
    live = {a for a, e in expected.items() if e["status"] == "live"}
    assert live <= archived, f"missed {sorted(live - archived)[:10]}"
