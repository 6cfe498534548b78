"""Revisits asked first by the revalidator (spiders/revalidate.py), against the replica over real HTTP.

Only a 304 is taken from it; every other answer reaches Scrapy as if Scrapy
had fetched it. So: the same archive as a Scrapy-only revisit, each page
fetched once, every response counted once, and the crawl's politeness kept.
"""
import json
from collections import Counter

import pytest

from tests.conftest import Site, cli, export, new_database, query, start_site

pytestmark = [pytest.mark.slow, pytest.mark.archive]

REVISIT = ("--revisit", "all", "--incremental", "--no-gap-probes")
QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "ERROR"}


def served(request, tmp_path, articles: int, seed: int) -> Site:
    site = start_site(tmp_path / "site", articles, seed=seed)
    request.addfinalizer(site.server.stop)
    return site


def served_again(request, site: Site, **behaviour) -> Site:
    """The same replica on the same port (the archive's URLs name it), now with `behaviour`."""
    from replica import ReplicaServer

    site.server.stop()
    again = Site(site.dir, ReplicaServer(site.dir, port=site.server.port, **behaviour).start())
    request.addfinalizer(again.server.stop)
    return again


def crawl(site, db, *args, env=None):
    result = cli("crawl", "--base-url", site.url, "--db", db, *(args or ("--no-gap-probes",)),
                 env={**QUIET, **(env or {})})
    return result.stdout


def last_run(db) -> tuple[dict, int]:
    stats, pages = query(db, "select stats, pages_fetched from crawl_runs order by id desc limit 1")[0]
    return json.loads(stats), pages


def article_fetches(site) -> Counter:
    from pipeline.reading.profile import load_profile

    profile = load_profile("cpsia")
    fetches = Counter()
    for target, n in site.server.request_counts.items():
        aid = profile.aid_of(site.url + target)
        if aid is not None:
            fetches[aid] += n
    return fetches


def versions(db) -> int:
    return query(db, "select count(*) from article_versions")[0][0]


def test_an_unchanged_portal_is_revisited_through_the_revalidator(request, tmp_path):
    site = served(request, tmp_path, 500, seed=71)
    db = new_database(request, tmp_path)
    crawl(site, db)
    live = sum(1 for a in site.state().articles.values() if a.live)
    before = versions(db)
    site.server.reset_counts()

    summary = crawl(site, db, *REVISIT)

    stats, pages = last_run(db)
    assert "0 versions written" in summary and versions(db) == before
    assert stats["downloader/response_status_count/304"] == live
    # The 304s came from the revalidator, but for the articles of the incremental walk's two
    # list pages per channel (5 channels, 20 a page), which Scrapy asks as it walks.
    assert stats["portal/revalidation/not_modified"] >= live - 5 * 2 * 20
    assert "portal/revalidation/off" not in stats
    # Every response the server sent is counted once, and no article was asked twice.
    assert pages == stats["downloader/response_count"] == sum(site.server.request_counts.values())
    assert set(article_fetches(site).values()) == {1}
    assert len(site.server.user_agents) == 1, "one User-Agent on both paths"


def test_edits_and_takedowns_answered_to_the_revalidator_are_archived_from_one_fetch(request, tmp_path):
    site = served(request, tmp_path, 240, seed=72)
    db = new_database(request, tmp_path)
    crawl(site, db)
    before = versions(db)
    changes = site.mutate(seed=73, edits=12, takedowns=6, republish=0, new=0)
    site.server.reset_counts()

    crawl(site, db, *REVISIT)

    stats, pages = last_run(db)
    expected = site.expected()
    exported = {row["aid"]: row for row in export(db)}
    assert {aid: row["status"] for aid, row in exported.items()} == {aid: e["status"] for aid, e in expected.items()}
    assert [aid for aid, e in expected.items() if exported[aid]["title"] != e["title"]
            or exported[aid]["body"] != e["body"]] == []
    assert versions(db) == before + len(changes["edited"]) + len(changes["taken_down"])
    assert sum(1 for row in exported.values() if row["status"] == "taken_down") == len(changes["taken_down"])
    # The edited and taken-down articles' answers were handed to Scrapy, not fetched again.
    assert stats["portal/revalidation/prefetched"] >= len(changes["edited"]) + len(changes["taken_down"])
    assert set(article_fetches(site).values()) == {1}
    assert pages == sum(site.server.request_counts.values())


def test_a_flaky_portal_during_revalidation_loses_nothing_and_takes_nothing_down(request, tmp_path):
    from replica import ALL_TRANSIENT, FaultPlan

    site = served(request, tmp_path, 200, seed=74)
    db = new_database(request, tmp_path)
    crawl(site, db)
    before = versions(db)
    site = served_again(request, site, faults=FaultPlan(rate=0.25, seed=75, kinds=ALL_TRANSIENT, slow_seconds=2.5))
    fast = {"PORTAL_ARCHIVE_DOWNLOAD_TIMEOUT": "1.5", "PORTAL_ARCHIVE_RETRY_BACKOFF": "0.1"}

    result = cli("crawl", "--base-url", site.url, "--db", db, *REVISIT, env={**QUIET, **fast}, check=False)

    stats, _ = last_run(db)
    print({k: v for k, v in stats.items() if "portal" in k or "retry" in k or "archive" in k})
    faults = site.server.fault_counts
    assert sum(faults.values()) > 20, faults
    # Faults reached the revalidator: timeouts and resets as errors, 5xx and broken pages as prefetched answers.
    assert stats.get("portal/revalidation/errors", 0) > 0 and stats["portal/revalidation/prefetched"] > 0
    assert versions(db) == before, "no false edit from a flaky page"
    assert query(db, "select count(*) from articles where status = 'taken_down'")[0][0] == 0, \
        "no false takedown from a timeout"
    failed = stats.get("archive/fetch_failed", 0)
    assert result.returncode == 0 or failed > 0
    # Whatever was checked is recorded checked; what failed after retries is recorded failed, never lost.
    assert stats.get("archive/not_modified", 0) + failed + stats.get("archive/unchanged", 0) >= 190


@pytest.mark.parametrize("revalidate", ["true", "false"])
def test_robots_txt_is_obeyed_from_the_first_request_on_both_paths(request, tmp_path, revalidate):
    site = served(request, tmp_path, 200, seed=76)
    db = new_database(request, tmp_path)
    crawl(site, db)
    site = served_again(request, site, robots="User-agent: *\nDisallow: /news/djyd/\n")
    disallowed = {a.path for a in site.state().articles.values() if a.live and a.channel == "djyd"}
    assert disallowed

    crawl(site, db, *REVISIT, env={"PORTAL_ARCHIVE_OBEY_ROBOTS": "true", "PORTAL_ARCHIVE_REVALIDATE": revalidate})

    stats, _ = last_run(db)
    # Not one page under the disallowed folder, list pages included: Scrapy 2.19's own middleware
    # let the requests that waited for robots.txt through unchecked (spiders/middlewares.RobotsTxt).
    assert [path for path in site.server.request_counts if path.startswith("/news/djyd/")] == []
    assert stats["robotstxt/forbidden"] >= len(disallowed)
    if revalidate == "true":
        assert stats["portal/revalidation/left_to_scrapy/robots"] > 0
        assert stats["portal/revalidation/not_modified"] > 0


@pytest.mark.parametrize("setting", [{"PORTAL_ARCHIVE_DOWNLOAD_DELAY": "0.001"},
                                     {"PORTAL_ARCHIVE_AUTOTHROTTLE": "true"},
                                     {"PORTAL_ARCHIVE_REVALIDATE": "false"}])
def test_pacing_or_the_switch_leaves_every_revisit_to_scrapy(request, tmp_path, setting):
    site = served(request, tmp_path, 60, seed=77)
    db = new_database(request, tmp_path)
    crawl(site, db)
    live = sum(1 for a in site.state().articles.values() if a.live)

    summary = crawl(site, db, *REVISIT, env=setting)

    stats, _ = last_run(db)
    assert "0 versions written" in summary
    assert stats["portal/revalidation/off"]
    assert "portal/revalidation/requests" not in stats
    assert stats["downloader/response_status_count/304"] == live


def test_requests_in_flight_never_exceed_the_concurrency_setting(request, tmp_path):
    from replica import FaultPlan

    site = served(request, tmp_path, 400, seed=78)
    db = new_database(request, tmp_path)
    crawl(site, db)
    # Slow answers keep requests in flight long enough for an excess to show.
    site = served_again(request, site, faults=FaultPlan(rate=0.3, seed=79, kinds=("slow",), slow_seconds=0.2))

    # Scrapy walks two list pages a channel (and fetches what the slow answers made it retry) while
    # the revalidator asks the revisits.
    crawl(site, db, *REVISIT, env={"PORTAL_ARCHIVE_CONCURRENT_REQUESTS": "3"})

    stats, _ = last_run(db)
    assert stats["portal/revalidation/not_modified"] > 150
    assert stats["portal/list_pages"] >= 10
    assert site.server.fault_counts["slow"] > 50
    assert site.server.max_in_flight == 3


def test_a_page_over_the_size_limit_is_refused_not_prefetched(request, tmp_path):
    site = served(request, tmp_path, 80, seed=80)
    db = new_database(request, tmp_path)
    crawl(site, db)
    changes = site.mutate(seed=81, edits=5, takedowns=0, republish=0, new=0)
    before = versions(db)

    crawl(site, db, *REVISIT, env={"PORTAL_ARCHIVE_MAX_PAGE_BYTES": "2000"})

    stats, _ = last_run(db)
    # Edited articles answer 200, and so do those whose related-articles box changed with them;
    # Scrapy fetches each again and refuses it, as it refuses the (larger) list pages.
    assert stats["portal/revalidation/too_large"] >= len(changes["edited"])
    run_id = query(db, "select max(id) from crawl_runs")[0][0]
    refused = query(db, "select reason from fetch_failures where crawl_run_id = ? and aid is not null", run_id)
    assert len(refused) == stats["portal/revalidation/too_large"]
    assert all("2000" in reason or "size" in reason.lower() for (reason,) in refused), refused[:3]
    assert versions(db) == before
