"""Trust under faults (issue 5): a flaky replica, and the archive still equals the ground truth."""
import json
from pathlib import Path

import pytest

from tests.conftest import BACKEND, IN_CI, Site, assert_equals_ground_truth, cli, export, new_database, query

pytestmark = pytest.mark.slow

OUTPUT = Path(__file__).parent.parent / "test-output"
FAST_RETRIES = {"PORTAL_ARCHIVE_LOG_LEVEL": "ERROR", "PORTAL_ARCHIVE_DOWNLOAD_TIMEOUT": "1.5",
                "PORTAL_ARCHIVE_RETRY_BACKOFF": "0.1", "PORTAL_ARCHIVE_LEASE_TTL_SECONDS": "5"}


def faulty_site(directory, articles, seed, rate):
    from replica import ALL_TRANSIENT, FaultPlan, ReplicaServer, generate, save_state

    save_state(generate(articles, seed=seed, defects={}, specials={"hostile": 2, "huge": 1, "nested": 1}), directory)
    plan = FaultPlan(rate=rate, seed=seed, kinds=ALL_TRANSIENT, slow_seconds=2.5)
    return Site(directory, ReplicaServer(directory, faults=plan).start())


def crawl(site, db):
    return cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all", env=FAST_RETRIES, check=False)


# Retries and timeouts are the crawl's: what reaches the archive is written as in the marked tests, so
# these two run on SQLite only.
def test_a_flaky_portal_still_yields_the_exact_archive(request, tmp_path):
    site = faulty_site(tmp_path / "site", 600, seed=31, rate=0.10)
    db = db_file = new_database(request, tmp_path)
    report = {"runs": []}
    try:
        for _ in range(2):  # a crawl, and at most one more run
            result = crawl(site, db)
            report["runs"].append(result.stdout.strip())
        expected = site.expected()
        assert_equals_ground_truth(db, expected)
        # Zero false versions: nothing changed on the portal, every article has exactly one version.
        assert query(db_file, "select count(*) from article_versions")[0][0] == len(expected)
        assert query(db_file, "select count(*) from articles where status='taken_down'")[0][0] == 0
        faults_before = dict(site.server.fault_counts)

        changes = site.mutate(seed=32, edits=30, takedowns=15, republish=5, new=20)
        for _ in range(2):
            report["runs"].append(crawl(site, db).stdout.strip())
        expected = site.expected()
        exported = assert_equals_ground_truth(db, expected)
        versions = {}
        for row in export(db, "--all-versions"):
            versions.setdefault(row["aid"], []).append(row["change"])
        edited = {int(a) for a in changes["edited"]}
        taken = {int(a) for a in changes["taken_down"]}
        for aid, changes_seen in versions.items():
            want = ["created", "edited"] if aid in edited else ["created", "taken_down"] if aid in taken else ["created"]
            assert changes_seen == want, (aid, changes_seen)
        assert {a for a, r in exported.items() if r["status"] == "taken_down"} == taken
        assert cli("verify", "--db", db, check=False).returncode == 0
        stats = [json.loads(s) for (s,) in query(db_file, "select stats from crawl_runs order by id")]
    finally:
        site.server.stop()
    report["faults_injected"] = dict(site.server.fault_counts)
    report["faults_injected_before_changes"] = faults_before
    report["handled"] = {
        "retried (by reason)": {k.split("/")[-1]: sum(s.get(k, 0) for s in stats)
                                for k in sorted({k for s in stats for k in s if k.startswith("retry/reason_count/")})},
        "broken pages fetched again": sum(s.get("portal/broken_page_retried", 0) for s in stats),
        "failed fetches recorded": sum(s.get("archive/fetch_failed", 0) for s in stats),
        "quarantined": sum(s.get("archive/quarantined", 0) for s in stats),
        "failed fetches retried by the next run": sum(s.get("retry/failed_articles", 0) for s in stats),
        "failed list pages retried by the next run": sum(s.get("retry/failed_lists", 0) for s in stats),
    }
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"faults-{BACKEND}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    assert sum(report["faults_injected"].values()) > 200
    assert set(report["faults_injected"]) >= {"http500", "http502", "http503", "slow", "reset", "truncated",
                                              "truncated_short", "empty200", "empty_page", "bad_bytes"}


@pytest.mark.archive
def test_takedowns_need_confirming_runs_and_a_return_is_restored(request, tmp_path):
    from replica import ReplicaServer, generate, load_state, save_state

    save_state(generate(150, seed=41), tmp_path / "site")
    site = Site(tmp_path / "site", ReplicaServer(tmp_path / "site").start())
    db = db_file = new_database(request, tmp_path)
    env = {**FAST_RETRIES, "PORTAL_ARCHIVE_TAKEDOWN_CONFIRMATIONS": "2"}
    run = lambda: cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all", env=env)  # noqa: E731
    try:
        run()
        changes = site.mutate(seed=42, edits=0, takedowns=4, republish=0, new=0)
        taken = {int(a) for a in changes["taken_down"]}
        run()
        statuses = dict(query(db_file, "select aid, status from articles"))
        assert all(statuses[a] == "live" for a in taken), "one 404 is not yet a takedown"
        run()
        statuses = dict(query(db_file, "select aid, status from articles"))
        assert all(statuses[a] == "taken_down" for a in taken), "the second run confirms it"
        # The portal puts one back: the archive records a restoration.
        state = load_state(tmp_path / "site")
        back = sorted(taken)[0]
        state.articles[back].status = "live"
        save_state(state, tmp_path / "site")
        run()
    finally:
        site.server.stop()
    changes_seen = [r["change"] for r in export(db, "--all-versions") if r["aid"] == back]
    assert changes_seen == ["created", "taken_down", "restored"]


def test_timeouts_and_server_errors_never_take_an_article_down(request, tmp_path):
    from replica import FaultPlan, ReplicaServer, generate, save_state

    save_state(generate(120, seed=51), tmp_path / "site")
    server = ReplicaServer(tmp_path / "site").start()
    site = Site(tmp_path / "site", server)
    db = db_file = new_database(request, tmp_path)
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env=FAST_RETRIES)
    finally:
        server.stop()
    # The same portal, now failing every request: nothing may be recorded as taken down.
    server = ReplicaServer(tmp_path / "site", faults=FaultPlan(rate=1.0, seed=1, kinds=("http503", "slow", "reset"),
                                                               slow_seconds=2.5)).start()
    try:
        result = cli("crawl", "--base-url", server.url, "--db", db, "--revisit", "all", check=False,
                     env={**FAST_RETRIES, "PORTAL_ARCHIVE_RETRY_TIMES": "1"})
    finally:
        server.stop()
    assert result.returncode == 1
    assert query(db_file, "select count(*) from articles where status='taken_down'")[0][0] == 0
    assert query(db_file, "select count(*) from article_versions")[0][0] == 120
    assert query(db_file, "select count(*) from fetch_failures")[0][0] >= 120


@pytest.mark.archive
def test_twenty_sigkills_leave_a_verifiable_archive_that_ends_exact(request, tmp_path):
    """Kills at random points of crawls and backfills: `verify` passes after each, and the end is exact."""
    import random
    import signal
    import time

    from replica import ReplicaServer, generate, save_state
    from tests.conftest import spawn_cli

    save_state(generate(1000, seed=61), tmp_path / "site")
    site = Site(tmp_path / "site", ReplicaServer(tmp_path / "site").start())
    # A lease ttl far longer than the test: each command starts at once, taking over its killed
    # predecessor's lease (its pid is dead on this host). With the reader and writer processes, so
    # kills also land while pages and batches are in a helper.
    env = {**FAST_RETRIES, "PORTAL_ARCHIVE_LEASE_TTL_SECONDS": "3600", "PORTAL_ARCHIVE_BATCH_SIZE": "40",
           "PORTAL_ARCHIVE_PARSE_PROCESSES": "1", "PORTAL_ARCHIVE_WRITE_PROCESS": "1"}
    db = db_file = new_database(request, tmp_path, "killed")
    rng = random.Random(62)
    verified = 0
    try:
        cli("db", "upgrade", "--db", db)
        for kill in range(20):
            command = ("backfill", "--no-progress") if kill % 2 else ("crawl", "--revisit", "all")
            proc = spawn_cli(*command, "--base-url", site.url, "--db", db, env=env)
            time.sleep(rng.uniform(0.3, 4.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            result = cli("verify", "--db", db, check=False)
            assert result.returncode == 0, f"after kill {kill + 1}:\n{result.stdout}"
            verified += 1
        cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all", env=env)
        expected = site.expected()
    finally:
        site.server.stop()
    assert verified == 20
    # The portal never changed: the end is the portal exactly, each article once, as created.
    assert_equals_ground_truth(db, expected)
    assert {(r["version"], r["change"]) for r in export(db, "--all-versions")} == {(1, "created")}
    assert query(db_file, "select count(*) from crawl_runs where status='running'")[0][0] == 0


def test_a_database_locked_past_its_busy_timeout_fails_the_crawl_cleanly(tmp_path):
    # SQLite-specific: the busy timeout and an EXCLUSIVE lock (PostgreSQL outages: test_postgres_outage).
    """Another writer holds SQLite's lock longer than the busy timeout: the run fails with the reason."""
    import sqlite3

    from replica import ReplicaServer, generate, save_state
    from tests.conftest import spawn_cli, wait_for

    save_state(generate(1500, seed=71), tmp_path / "site")
    server = ReplicaServer(tmp_path / "site").start()
    db_file = tmp_path / "a.sqlite"
    db = f"sqlite:///{db_file}"
    cli("db", "upgrade", "--db", db)
    env = {**FAST_RETRIES, "PORTAL_ARCHIVE_SQLITE_BUSY_TIMEOUT_MS": "500", "PORTAL_ARCHIVE_BATCH_SIZE": "50"}
    try:
        log = open(tmp_path / "crawl.log", "w")
        proc = spawn_cli("crawl", "--base-url", server.url, "--db", db, env=env, log=log)
        wait_for(lambda: query(db_file, "select count(*) from article_versions")[0][0] >= 100, 60, interval=0.05,
                 what="a crawl under way")
        blocker = sqlite3.connect(db_file, timeout=30, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN EXCLUSIVE")
        # Held until the crawl has given up on its writes (after its batch retries), then released,
        # so the run can still be closed.
        wait_for(lambda: "archive write failed" in (tmp_path / "crawl.log").read_text(), 120, interval=0.2,
                 what="the crawl to give up writing")
        blocker.execute("ROLLBACK")
        blocker.close()
        code = proc.wait(timeout=120)
        log.close()
        assert code == 1, (tmp_path / "crawl.log").read_text()[-3000:]
    finally:
        server.stop()
    status, error = query(db_file, "select status, error from crawl_runs order by id desc limit 1")[0]
    assert status == "failed" and "database is locked" in error
    versions = query(db_file, "select count(*) from article_versions")[0][0]
    articles = query(db_file, "select count(*) from articles")[0][0]
    assert versions == articles, "no partial version: every article has its version, nothing more"
    assert cli("verify", "--db", db, check=False).returncode == 0


def test_postgresql_going_away_mid_crawl_fails_the_run_cleanly(tmp_path):
    """PostgreSQL stops during a crawl: the crawl fails with the reason and leaves no partial version."""
    from replica import ReplicaServer, generate, save_state
    from tests.conftest import spawn_cli, wait_for
    from tests.servers import PostgresServer, ServerUnavailable

    try:
        server = PostgresServer().start()
    except ServerUnavailable:
        if IN_CI:
            raise
        pytest.skip("PostgreSQL is not installed")
    save_state(generate(1500, seed=72), tmp_path / "site")
    site = ReplicaServer(tmp_path / "site").start()
    db = server.create_database()
    env = {**FAST_RETRIES, "PORTAL_ARCHIVE_BATCH_SIZE": "50"}
    try:
        with open(tmp_path / "crawl.log", "w") as log:
            proc = spawn_cli("crawl", "--base-url", site.url, "--db", db, env=env, log=log)
            wait_for(lambda: query(db, "select count(*) from article_versions")[0][0] >= 100, 60, interval=0.05,
                     what="a crawl under way")
            from tests.conftest import _ENGINES

            for url in [u for u in _ENGINES if u == db]:
                _ENGINES.pop(url).dispose()
            server.pause()
            wait_for(lambda: "archive write failed" in (tmp_path / "crawl.log").read_text(), 120,
                     what="the crawl to give up writing")
            server.resume()
            code = proc.wait(timeout=120)
        assert code == 1, (tmp_path / "crawl.log").read_text()[-3000:]
        status, error = query(db, "select status, error from crawl_runs order by id desc limit 1")[0]
        assert status == "failed" and "archive write failed" in error
        versions = query(db, "select count(*) from article_versions")[0][0]
        assert versions == query(db, "select count(*) from articles")[0][0], "no partial version"
        assert cli("verify", "--db", db, check=False).returncode == 0
    finally:
        site.stop()
        for url in [u for u in _ENGINES if u == db]:
            _ENGINES.pop(url).dispose()
        server.stop()


def _mount_small_disk(where: Path, size: str) -> None:
    """A size-limited tmpfs at `where`; skipped where mounting is not allowed, except under CI."""
    import subprocess

    where.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"cannot mount a small tmpfs to fill ({result.stderr.strip() or result.returncode}); needs root"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def test_a_full_disk_fails_the_crawl_with_the_reason_and_the_next_run_completes(tmp_path):
    # SQLite-specific: the archive file, its WAL and its journal on one small filesystem.
    import os
    import subprocess

    from replica import ReplicaServer, generate, save_state

    disk = tmp_path / "disk"
    _mount_small_disk(disk, "48m")
    save_state(generate(600, seed=41), tmp_path / "site")  # about 14 MB of archive
    server = ReplicaServer(tmp_path / "site").start()
    site = Site(tmp_path / "site", server)
    db_file = disk / "archive.sqlite"
    db = f"sqlite:///{db_file}"
    env = {**FAST_RETRIES, "PORTAL_ARCHIVE_BATCH_SIZE": "25"}
    try:
        cli("db", "upgrade", "--db", db)
        # Leave 5 MB free: room for the first batches, not for the whole crawl.
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(filler, "wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, free - 5 * 2**20)
        full = cli("crawl", "--base-url", site.url, "--db", db, env=env, check=False)
        assert full.returncode == 1, full.stdout + full.stderr[-3000:]
        reason = "the disk holding the archive is full"
        assert f"error: archive write failed: {reason}" in full.stdout
        status, error = query(db_file, "select status, error from crawl_runs order by id desc limit 1")[0]
        assert status == "failed" and reason in error and "\n" not in error
        articles = query(db_file, "select count(*) from articles")[0][0]
        assert 0 < articles < 600, "the disk filled up during the crawl"
        assert query(db_file, "select count(*) from article_versions")[0][0] == articles
        assert cli("verify", "--db", db, check=False).returncode == 0

        filler.unlink()  # space again
        again = cli("crawl", "--base-url", site.url, "--db", db, env=env, check=False)
        assert again.returncode == 0, again.stdout + again.stderr[-3000:]
        expected = site.expected()
        assert_equals_ground_truth(db, expected)
        assert query(db_file, "select count(*) from article_versions")[0][0] == len(expected)
        assert cli("verify", "--db", db, check=False).returncode == 0
        assert not (disk / "archive.sqlite-reserve").exists(), "the run gave its reserve back"
    finally:
        server.stop()
        subprocess.run(["umount", "--lazy", str(disk)], capture_output=True)
