"""Polite by default, and never beyond the request budget: counted at the replica, over real HTTP."""
import os
import signal
import statistics
from urllib.parse import urlsplit

import pytest

from tests.conftest import FAST, cli, export, new_database, query, spawn_cli, start_site, wait_for, write_config


QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
# The tests marked `archive` read the budget's ledger in the database: they run on PostgreSQL too.


def polite_env(**extra) -> dict:
    """The environment of a user who set nothing: the tests' fast settings removed."""
    env = {k: v for k, v in os.environ.items() if k not in FAST}
    return {**env, **QUIET, **extra}


def test_a_crawl_with_no_settings_is_polite(request, tmp_path):
    import subprocess
    import sys

    site = start_site(tmp_path / "site", 5, seed=21)
    db = new_database(request, tmp_path)
    try:
        result = subprocess.run([sys.executable, "-m", "ops.cli", "crawl", "--base-url", site.url, "--db", db],
                                capture_output=True, text=True, timeout=300,
                                env=polite_env(PORTAL_ARCHIVE_CONTACT="archive-team@example.org"))
        arrivals = site.server.arrivals
        in_flight = site.server.max_in_flight
        agents = site.server.user_agents
    finally:
        site.server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    assert in_flight == 1  # one request at a time
    assert arrivals[0][1] == "/robots.txt"  # asked before anything else
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:])]
    # Scrapy's delay of 1 s, randomized between 0.5 and 1.5 s (RANDOMIZE_DOWNLOAD_DELAY).
    assert min(gaps) >= 0.45 and statistics.median(gaps) >= 0.8, gaps
    assert len(arrivals) >= 10 and len(export(db)) == 5
    (agent,) = agents
    assert agent.startswith("portal-archive/") and "archive-team@example.org" in agent
    assert f"requests: {len(arrivals)} of 20000 allowed" in result.stdout


@pytest.mark.archive
def test_crawls_never_spend_more_than_the_daily_budget(request, tmp_path, profile):
    site = start_site(tmp_path / "site", 120, seed=22)
    db = new_database(request, tmp_path)
    env = {**QUIET, "PORTAL_ARCHIVE_REQUESTS_PER_DAY": "60"}
    try:
        first = cli("crawl", "--base-url", site.url, "--db", db, env=env).stdout
        second = cli("crawl", "--base-url", site.url, "--db", db, env=env).stdout
        backfill = cli("backfill", "--no-progress", "--base-url", site.url, "--db", db, env=env)
        sent = sum(site.server.request_counts.values())
        order = [target for _, target in site.server.arrivals]
    finally:
        site.server.stop()
    assert sent == 60
    assert "requests: 60 of 60 allowed" in first and "left for lack of budget: requests not sent" in first
    assert "skipped: request budget spent: 60 requests in the last 24 hours" in second
    assert "skipped: request budget spent" in backfill.stdout and "is not finished" in backfill.stdout
    assert "pace: " in backfill.stderr and "10,000 pages take about" in backfill.stderr
    (ledger,) = query(db, "select sum(requests) from crawl_runs")[0]
    assert ledger == sent
    # What it could afford went to list pages first, then the new articles they showed: every
    # article it asked for is archived.
    is_list = lambda t: t == "/robots.txt" or t.endswith("/") or "/list_" in t  # noqa: E731
    # robots.txt, then the five channels' first pages are asked before any article (the server sees
    # them in connection order, not in the order they were sent: an article can overtake a list page
    # on a kept-alive connection, so what is checked is that all five got a share of the budget).
    assert order[0] == "/robots.txt"
    roots = {urlsplit(profile.channel_root_url(site.url, channel)).path for channel in profile.channels}
    assert len(roots) == 5 and roots <= set(order)
    assert len(export(db)) == sum(1 for t in order if not is_list(t))
    cli("verify", "--db", db)


@pytest.mark.archive
def test_new_articles_come_before_revisits_under_a_tight_budget(request, tmp_path):
    site = start_site(tmp_path / "site", 200, seed=23)
    db = new_database(request, tmp_path)
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env=QUIET)
        report = site.mutate(seed=5, edits=5, takedowns=0, republish=0, new=7)
        site.server.reset_counts()
        out = cli("crawl", "--base-url", site.url, "--db", db, "--incremental",
                  env={**QUIET, "PORTAL_ARCHIVE_REQUESTS_PER_RUN": "30"}).stdout
        sent = sum(site.server.request_counts.values())
    finally:
        site.server.stop()
    assert sent <= 30 and "of 30 allowed" in out
    archived = {row["aid"] for row in export(db)}
    assert set(report["new"]) <= archived
    (stats,) = query(db, "select stats from crawl_runs order by id desc limit 1")[0]
    assert '"budget/spent/new": 7' in stats and '"budget/spent/revisit": ' in stats
    assert "revisits not planned" in out or "requests not sent" in out


@pytest.mark.slow
@pytest.mark.archive
def test_daemon_runs_spend_their_share_of_the_day_and_not_a_request_more(request, tmp_path):
    site = start_site(tmp_path / "site", 150, seed=24)
    db = new_database(request, tmp_path)
    # A job every 2 s gets 2/86400 of the day: 20 requests with 864,000 a day.
    config = write_config(tmp_path / "c.toml", f'''
base_url = "{site.url}"
parse_processes = 0
write_process = 0
[daemon.jobs.frequent]
every_seconds = 2
walk = "incremental"
slack = 0
revisit = "policy"
timeout_seconds = 60
''')
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env=QUIET)
        site.server.reset_counts()
        with open(tmp_path / "daemon.log", "w") as log:
            proc = spawn_cli("--config", str(config), "daemon", "--db", db, log=log,
                             env={**QUIET, "PORTAL_ARCHIVE_REQUESTS_PER_DAY": "864000"})
            try:
                wait_for(lambda: query(db, "select count(*) from crawl_runs where job = 'frequent' "
                                           "and status = 'succeeded'")[0][0] >= 4, 120, what="four daemon runs")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        sent = sum(site.server.request_counts.values())
    finally:
        site.server.stop()
    runs = query(db, "select requests, allowance, status from crawl_runs where job = 'frequent'")
    crawled = [(requests, allowance) for requests, allowance, status in runs if requests]
    assert len(crawled) >= 4 and all(requests <= allowance == 20 for requests, allowance in crawled), runs
    assert sent == sum(requests or 0 for requests, _, _ in runs)
    assert sent <= 20 * len(runs)
    # Nothing new on the portal: after robots.txt and the first list pages, the share went to revisits.
    (stats,) = query(db, "select stats from crawl_runs where job = 'frequent' and status = 'succeeded' "
                         "order by id limit 1")[0]
    assert '"budget/spent/revisit": 14' in stats
