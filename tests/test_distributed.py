"""Past one machine (issue 4): workers on one Redis frontier writing one PostgreSQL archive."""
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import assert_equals_ground_truth, cli, query, start_site, wait_for

# Always on PostgreSQL and Redis (the point of the feature), so not repeated per backend.
pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(request, tmp_path, postgres_server, redis_server):
    import redis

    # Every test's archive starts at run 1, and so do its Redis keys: a test that failed midway
    # must not leave its run's frontier to the next.
    redis.Redis.from_url(redis_server.url).flushdb()
    db = postgres_server.create_database()
    # A dead worker is noticed within seconds here (the defaults, 30 s and 10 s, suit real machines).
    env = {**os.environ, "PORTAL_ARCHIVE_DB": db, "PORTAL_ARCHIVE_REDIS": redis_server.url,
           "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING", "PORTAL_ARCHIVE_WORKER_IDLE_SECONDS": "4",
           "PORTAL_ARCHIVE_WORKER_HEARTBEAT_TTL": "5", "PORTAL_ARCHIVE_FRONTIER_RECLAIM_SECONDS": "0.5"}
    return db, env


def start(args, env, log):
    return subprocess.Popen([sys.executable, "-m", "ops.cli", *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def list_pages(site) -> set[str]:
    """Every list page the replica serves: each channel's root and its pages 2…N."""
    from replica.index import build_index
    from replica.render import page_count
    from replica.site import CHANNELS

    index = build_index(site.state())
    return {path for channel in CHANNELS
            for path in [channel.root, *(f"{channel.root}list_{channel.typeid}_{page}.html"
                                         for page in range(2, page_count(len(index.by_channel[channel.slug])) + 1))]}


def _busiest_worker(redis_url: str, pids) -> int | None:
    """The pid of the worker owning the most in-flight requests (keys …:inflight:<host>:<pid>:<tag>)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    owned = {int(key.decode().split(":")[-2]): client.hlen(key)
             for key in client.scan_iter("portal-archive:run:*:inflight:*")}
    owned = {pid: n for pid, n in owned.items() if n and pid in pids}
    return max(owned, key=owned.get) if owned else None


def distributed_run(site, env, tmp_path, workers=3, kill_one_after=None, name="run"):
    logs = [open(tmp_path / f"{name}-{i}.log", "w") for i in range(workers + 1)]
    coordinator = start(["crawl", "--distributed", "--base-url", site.url, "--revisit", "all"], env, logs[0])
    procs = [start(["worker"], env, logs[i + 1]) for i in range(workers)]
    killed = None
    try:
        if kill_one_after is not None:
            db = env["PORTAL_ARCHIVE_DB"]
            wait_for(lambda: query(db, "select count(*) from articles")[0][0] >= kill_one_after, 300,
                     interval=0.1, what=f"{kill_one_after} articles archived")
            # The victim is a worker that owns work right now (a slow starter may own nothing yet).
            by_pid = {p.pid: p for p in procs}
            victim = wait_for(lambda: _busiest_worker(env["PORTAL_ARCHIVE_REDIS"], by_pid), 60, interval=0.05,
                              what="a worker owning requests")
            killed = by_pid[victim]
            killed.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(timeout=600)
        assert coordinator.wait(timeout=600) == 0, (tmp_path / f"{name}-0.log").read_text()[-3000:]
    finally:
        for p in [coordinator, *procs]:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    return killed


def test_three_workers_archive_every_article_exactly_once_fetching_each_page_once(tmp_path, cluster, redis_server):
    db, env = cluster
    site = start_site(tmp_path / "site", 1200, seed=81)
    try:
        distributed_run(site, env, tmp_path)
        counts = dict(site.server.request_counts)
        expected = site.expected()
    finally:
        site.server.stop()
    assert_equals_ground_truth(db, expected)
    assert query(db, "select count(*) from article_versions")[0][0] == 1200
    pages = {path: n for path, n in counts.items() if path != "/robots.txt"}
    assert max(pages.values()) == 1, [p for p, n in pages.items() if n > 1][:5]
    assert list_pages(site) - set(pages) == set()
    # The run released its Redis memory.
    import redis

    assert not list(redis.Redis.from_url(redis_server.url).scan_iter("portal-archive:*"))
    run = query(db, "select status, articles_new, versions_written from crawl_runs")[0]
    assert run == ("succeeded", 1200, 1200)


# Both ways a worker writes the archive: a writer process (unpaced crawls on two cores) commits a
# batch after its items' callbacks have ended; the crawl's own process (the polite defaults) may
# commit one before.
@pytest.mark.parametrize("write_process", ["1", "0"], ids=["writer-process", "in-process"])
def test_a_killed_worker_loses_nothing_the_same_run_archives_every_article(tmp_path, cluster, redis_server,
                                                                           write_process):
    db, env = cluster
    env = {**env, "PORTAL_ARCHIVE_WRITE_PROCESS": write_process}
    site = start_site(tmp_path / "site", 1500, seed=82)
    try:
        distributed_run(site, env, tmp_path, kill_one_after=400, name="killed")
        counts = dict(site.server.request_counts)
        expected = site.expected()
    finally:
        site.server.stop()
    # That same run archived every article, each once.
    assert_equals_ground_truth(db, expected)
    assert query(db, "select count(*) from article_versions")[0][0] == 1500
    assert query(db, "select article_id from article_versions group by article_id having count(*) > 1") == []
    assert cli("verify", "--db", db, check=False).returncode == 0
    (status, stats), = query(db, "select status, stats from crawl_runs")
    assert status == "succeeded"
    # What the killed worker owned went back to the queue (put back by a survivor or the coordinator).
    assert json.loads(stats).get("frontier/reclaimed", 0) > 0, stats
    pages = {path: n for path, n in counts.items() if path != "/robots.txt"}
    # Every list page too (the articles alone prove less: related links reach past a lost list page).
    assert list_pages(site) - set(pages) == set()
    twice = [p for p, n in pages.items() if n == 2]
    assert max(pages.values()) <= 2, [p for p, n in pages.items() if n > 2][:5]
    print(f"{len(pages)} pages, {len(twice)} fetched twice (owned by the killed worker)")
    import redis

    assert not list(redis.Redis.from_url(redis_server.url).scan_iter("portal-archive:*"))


def test_workers_share_one_request_budget(tmp_path, cluster):
    db, env = cluster
    site = start_site(tmp_path / "site", 500, seed=83)
    try:
        distributed_run(site, {**env, "PORTAL_ARCHIVE_REQUESTS_PER_RUN": "150"}, tmp_path, workers=2)
        sent = sum(site.server.request_counts.values())
    finally:
        site.server.stop()
    # Every worker's requests, robots.txt included, drew from the run's one allowance in Redis.
    assert sent <= 150
    (requests, allowance, status) = query(db, "select requests, allowance, status from crawl_runs")[0]
    assert (requests, allowance, status) == (sent, 150, "succeeded")
    assert 0 < query(db, "select count(*) from articles")[0][0] < 150


def test_a_distributed_run_whose_callbacks_raised_fails_and_says_why(tmp_path, cluster, redis_server):
    """A worker's callbacks raise (a bug, simulated here: every list page's walk breaks): the
    workers' counts reach the coordinator, whose run fails instead of passing for a success."""
    broken = ("import sys, spiders.portal as p; p.PortalSpider._requests_for = lambda self, *a, **k: 1 / 0; "
              "from ops.cli import main; sys.argv[0] = 'portal-archive'; main()")
    db, env = cluster
    site = start_site(tmp_path / "site", 30, seed=83)
    with open(tmp_path / "coordinator.log", "w") as log, open(tmp_path / "worker.log", "w") as worker_log:
        coordinator = start(["crawl", "--distributed", "--base-url", site.url], env, log)
        worker = subprocess.Popen([sys.executable, "-c", broken, "worker"], env=env, stdout=worker_log,
                                  stderr=subprocess.STDOUT)
        try:
            worker.wait(timeout=300)
            assert coordinator.wait(timeout=300) == 1
        finally:
            site.server.stop()
            for p in (coordinator, worker):
                if p.poll() is None:
                    p.kill()
    said = (tmp_path / "coordinator.log").read_text()
    assert "run 1 failed" in said and "page callbacks raised (ZeroDivisionError 5)" in said, said[-2000:]
    assert query(db, "select status from crawl_runs")[0][0] == "failed"
