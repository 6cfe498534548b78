"""The real thing in compressed time: a replica that publishes, edits and takes down articles over
real seconds, the daemon keeping an archive of it under a small request budget, and the share of
every version the portal showed that the archive captured (from `export --all-versions`).

Two identical portals (one seed) run side by side, each with its own archive and daemon and the
same budget: one daemon revisits by the adaptive policy, the other round-robin (`uniform`).
"""
import json
import signal
import time

import pytest

from tests.conftest import cli, export, new_database, query, spawn_cli, start_site, write_config

# SQLite only: what is measured is the policy; both backends run the same archive code in the other tests.
pytestmark = [pytest.mark.slow]

# Compressed time: half a minute here is a day or so of the portal. It publishes every 2 s, edits a
# third of its new articles, mostly within half a minute or a minute of publication (some several
# times), a few late, takes some down, and now and then edits or takes down one of the 300 articles
# it had before; a daemon job runs every 2 s with 32 requests each (1,382,400 a day), and every
# article is seen at least every 5 minutes (the floor, about a week of the portal's time).
LIVE = dict(seed=7, publish_every=2.0, edited_share=0.35, edits_mean=1.8, early_edit_seconds=30.0,
            late_share=0.1, late_edit_seconds=90.0, old_edit_share=0.01, takedown_share=0.04,
            old_takedown_share=0.005, restore_share=0.2, duration=90.0)
TAIL = 15.0  # seconds the daemons go on after the last event
CONFIG = """
base_url = "{url}"
log_level = "WARNING"
parse_processes = 0
write_process = 0
revisit_strategy = "{strategy}"
revisit_floor_days = {floor}
[daemon.jobs.frequent]
every_seconds = 2
walk = "incremental"
slack = 0
revisit = "policy"
timeout_seconds = 60
"""
REQUESTS_PER_RUN = 32
PER_DAY = REQUESTS_PER_RUN * 86400 // 2
FLOOR_SECONDS = 300


def test_the_adaptive_policy_captures_nine_in_ten_versions_of_a_live_portal_and_more_than_round_robin(
        request, tmp_path):
    from replica import LivePlan, LivePortal, load_history, version_recall

    strategies = ("adaptive", "uniform")
    sites = {s: start_site(tmp_path / s, 300, seed=31) for s in strategies}
    dbs = {s: new_database(request, tmp_path, s) for s in strategies}
    procs, portals = {}, {}
    try:
        for s in strategies:
            cli("crawl", "--base-url", sites[s].url, "--db", dbs[s], env={"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})
            sites[s].server.reset_counts()
        for s in strategies:
            portals[s] = LivePortal(sites[s].dir, LivePlan(**LIVE)).start()
            config = write_config(tmp_path / f"{s}.toml", CONFIG.format(
                url=sites[s].url, strategy=s, floor=FLOOR_SECONDS / 86400))
            procs[s] = spawn_cli("--config", str(config), "daemon", "--db", dbs[s],
                                 log=open(tmp_path / f"{s}.log", "w"),
                                 env={"PORTAL_ARCHIVE_REQUESTS_PER_DAY": str(PER_DAY)})
        time.sleep(LIVE["duration"] + TAIL)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=90)
        for portal in portals.values():
            portal.stop()
        sent = {s: sum(site.server.request_counts.values()) for s, site in sites.items()}
        for site in sites.values():
            site.server.stop()
    results = {}
    for s in strategies:
        rows = export(dbs[s], "--all-versions")
        # The versions the portal showed once live mode began (those before it: the first crawl's).
        results[s] = version_recall(load_history(sites[s].dir), rows, since=portals[s].started_at)
        runs = query(dbs[s], "select count(*), sum(requests), max(requests), max(allowance) from crawl_runs "
                             "where job = 'frequent'")[0]
        results[s]["runs"], results[s]["requests"] = runs[0], runs[1]
        assert runs[2] <= runs[3] == REQUESTS_PER_RUN and sent[s] == runs[1]  # not a request beyond the budget
        cli("verify", "--db", dbs[s])
    summary = {s: {k: v for k, v in r.items() if k != "missed"} for s, r in results.items()}
    (tmp_path.parent / "freshness-live.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps(summary, indent=1, default=str))
    adaptive, uniform = results["adaptive"], results["uniform"]
    assert adaptive["versions"] >= 60
    assert adaptive["version_recall"] >= 0.9, summary
    assert adaptive["version_recall"] > uniform["version_recall"], summary
    # Both spent the same budget (within a run or two of each other).
    assert abs(adaptive["requests"] - uniform["requests"]) <= 0.15 * uniform["requests"], summary
