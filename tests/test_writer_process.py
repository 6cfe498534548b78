"""Writing the archive in a writer process (pipeline/archive.py): same archive, bounded, no loose ends.

The writer process is how a crawl takes the database off the path of every
fetch. It must change nothing in what is archived; when the database is
slower than the portal the crawl must wait for it instead of piling batches
up in memory; a writer that dies must fail the run with the reason and leave
a consistent archive that the next run completes; and a killed crawl must
not leave it behind.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from ops.lease import _alive
from spiders.stages import WRITES_AHEAD
from tests.conftest import (
    cli,
    crawl_under_way,
    export,
    helper_processes,
    new_database,
    query,
    spawn_cli,
    start_site,
    wait_for,
)

QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
WHEN = ("fetched_at", "valid_from", "valid_to")  # when each crawl ran: all else must be equal


@pytest.mark.archive
def test_crawls_with_and_without_a_writer_process_archive_the_same(request, tmp_path):
    site = start_site(tmp_path / "site", 300, seed=51)
    try:
        exports, runs = [], []
        for writer in ("1", "0"):
            db = new_database(request, tmp_path, f"w{writer}")
            out = cli("crawl", "--base-url", site.url, "--db", db,
                      env={**QUIET, "PORTAL_ARCHIVE_WRITE_PROCESS": writer, "PORTAL_ARCHIVE_BATCH_SIZE": "25"}).stdout
            exports.append({r["aid"]: {k: v for k, v in r.items() if k not in WHEN} for r in export(db)})
            runs.append(out.splitlines()[0].split(":", 1)[1])  # the counts, without the run id
        assert len(exports[0]) == 300
        assert exports[0] == exports[1]
        assert runs[0] == runs[1], "the run's counts come back from the writer process complete"
        assert "300 new" in runs[0]
    finally:
        site.server.stop()


def test_a_crawl_waits_for_a_slow_database_instead_of_piling_batches_up(tmp_path):
    """While another connection holds the archive's write lock, the crawl stops fetching soon
    after the writer's queue is full; released, it finishes with everything archived."""
    site = start_site(tmp_path / "site", 2000, seed=52)
    db_file = tmp_path / "a.sqlite"
    db = f"sqlite:///{db_file}"
    cli("db", "upgrade", "--db", db)
    batch, concurrency = 20, 8
    env = {**QUIET, "PORTAL_ARCHIVE_WRITE_PROCESS": "1", "PORTAL_ARCHIVE_BATCH_SIZE": str(batch),
           "PORTAL_ARCHIVE_CONCURRENT_REQUESTS": str(concurrency), "PORTAL_ARCHIVE_SQLITE_BUSY_TIMEOUT_MS": "120000"}
    blocker = sqlite3.connect(db_file, timeout=30, isolation_level=None, check_same_thread=False)
    crawl = None
    try:
        crawl = spawn_cli("crawl", "--base-url", site.url, "--db", db, "--no-gap-probes", env=env)
        wait_for(lambda: query(db_file, "select count(*) from article_versions")[0][0] >= 2 * batch, 120,
                 interval=0.02, what="a crawl under way")
        blocker.execute("BEGIN IMMEDIATE")
        archived = query(db_file, "select count(*) from article_versions")[0][0]
        # The crawl fills the writer's queue and stops: no request for 3 s, within a minute (how
        # soon depends on the machine's load, not on the code).
        fetched = lambda: sum(site.server.request_counts.values())  # noqa: E731
        deadline = time.monotonic() + 60
        stalled, since = fetched(), time.monotonic()
        while time.monotonic() - since < 3:
            assert time.monotonic() < deadline, "no fetching while the archive cannot keep up"
            time.sleep(0.2)
            if fetched() != stalled:
                stalled, since = fetched(), time.monotonic()
        # What it may fetch beyond the archive: the batches with the writer and the full buffer,
        # what was in flight, and what Scrapy's scraper holds before it stops asking for more
        # (SCRAPER_SLOT_MAX_ACTIVE_SIZE, 5 MB of responses); list pages come with them.
        sample = list(site.expected().values())[:20]
        smallest = min(len(urllib.request.urlopen(a["url"], timeout=10).read()) for a in sample)
        held_by_scrapy = 5_000_000 // smallest
        bound = (WRITES_AHEAD + 1) * batch + concurrency + held_by_scrapy
        assert stalled < (archived + bound) * 1.1, f"{stalled} pages fetched, {archived} archived"
        assert stalled < 2000, "the crawl did stop"
        blocker.execute("ROLLBACK")
        assert crawl.wait(300) == 0
        assert query(db_file, "select count(*) from articles")[0][0] == 2000
        assert query(db_file, "select status from crawl_runs")[0][0] == "succeeded"
    finally:
        if crawl is not None and crawl.poll() is None:
            crawl.kill()
        blocker.close()
        site.server.stop()


@pytest.mark.archive
def test_a_killed_writer_fails_the_run_and_the_next_run_completes_it(request, tmp_path):
    site = start_site(tmp_path / "site", 1500, seed=53)
    db = new_database(request, tmp_path)
    env = {**QUIET, "PORTAL_ARCHIVE_WRITE_PROCESS": "1", "PORTAL_ARCHIVE_BATCH_SIZE": "50"}
    try:
        crawl = crawl_under_way(site, db, env)
        writers = helper_processes(crawl.pid, "archive-writer")
        assert len(writers) == 1, "the crawl writes its batches in one writer process"
        os.kill(writers[0], signal.SIGKILL)
        assert crawl.wait(300) == 1
        status, error = query(db, "select status, error from crawl_runs")[0]
        assert status == "failed"
        assert "archive writer process died" in error
        versions = query(db, "select count(*) from article_versions")[0][0]
        assert versions == query(db, "select count(*) from articles")[0][0] < 1500, "whole batches or nothing"
        assert cli("verify", "--db", db, check=False).returncode == 0

        cli("crawl", "--base-url", site.url, "--db", db, env=env)
        assert query(db, "select count(*) from articles")[0][0] == 1500
        assert query(db, "select count(*) from article_versions")[0][0] == 1500, "nothing written twice"
        assert cli("verify", "--db", db, check=False).returncode == 0
    finally:
        site.server.stop()


def test_a_sigkilled_crawl_leaves_no_helper_process_behind(tmp_path):
    site = start_site(tmp_path / "site", 1500, seed=54)
    db = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    try:
        crawl = crawl_under_way(site, db, {**QUIET, "PORTAL_ARCHIVE_PARSE_PROCESSES": "1",
                                           "PORTAL_ARCHIVE_WRITE_PROCESS": "1", "PORTAL_ARCHIVE_BATCH_SIZE": "50"},
                                versions=50)
        started = helper_processes(crawl.pid)
        assert helper_processes(crawl.pid, "reader") and helper_processes(crawl.pid, "archive-writer")
        crawl.send_signal(signal.SIGKILL)
        crawl.wait(30)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in started), "the reader and the writer died with their crawl"
        versions = query(db, "select count(*) from article_versions")[0][0]
        assert versions == query(db, "select count(*) from articles")[0][0]
    finally:
        site.server.stop()


# --- the run opened and closed in the writer process (ops/crawl.py, ops/crawl_archive.py) ------

def test_a_helper_answers_blocking_calls_before_and_after_the_crawls_event_loop():
    """The run is opened before the reactor runs and closed after it stopped: blocking calls on
    the pipes the loop used (and left non-blocking) in between."""
    import asyncio

    from spiders.helpers import HelperProcess

    helper = HelperProcess("test")
    try:
        assert helper.call_now("os:getpid") == ("ok", helper.process.pid)

        async def crawl():
            answer = await helper.call("os:getppid")
            helper.detach()  # as the archive stage does when the spider closes
            return answer

        assert asyncio.run(crawl()) == ("ok", os.getpid())
        assert not helper.dead
        assert helper.call_now(os.getpid) == ("ok", helper.process.pid)
        status, error = helper.call_now("math:sqrt", -1)
        assert status == "error" and "ValueError" in error
    finally:
        helper.close()
    assert helper.process.returncode == 0


def test_the_crawls_own_process_imports_no_database_module_with_a_writer_process(request, tmp_path):
    """With a writer process the run is opened, kept (its lease's heartbeat) and closed there, and
    the batches are written there: the crawl's process imports Scrapy meanwhile, and never
    SQLAlchemy, Alembic or the archive's models."""
    site = start_site(tmp_path / "site", 40, seed=56)
    db = new_database(request, tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "ops.cli", "crawl", "--base-url", site.url, "--db", db],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, **QUIET, "PORTAL_ARCHIVE_WRITE_PROCESS": "1", "PORTAL_ARCHIVE_PARSE_PROCESSES": "1"})
    finally:
        site.server.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "40 new" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"scrapy", "spiders.portal", "ops.crawl"} <= imported
    database = sorted(m for m in imported if m.split(".")[0] in ("sqlalchemy", "alembic", "psycopg")
                      or m.startswith(("pipeline.archive.db", "pipeline.archive.models", "ops.crawl_archive")))
    assert database == []
    assert query(db, "select status, articles_new from crawl_runs") == [("succeeded", 40)]
    assert query(db, "select count(*) from leases")[0][0] == 0, "the writer gave the lease back"


def test_what_the_archive_refuses_reads_the_same_with_a_writer_process(request, tmp_path):
    """The checks that open a run (a usable database, a free lease, room in the request budget)
    run in the writer process: their one-line errors, exit codes and skipped runs are the ones the
    crawl's own process gives."""
    (tmp_path / "a-file").write_text("not a directory")
    notes = tmp_path / "notes.sqlite"
    notes.write_text("these are notes, not an archive\n")
    held = new_database(request, tmp_path, "held")
    cli("db", "upgrade", "--db", held)
    query(held, "insert into leases (name, holder, job, acquired_at, expires_at) values "
                "('crawl', 'otherhost:4242:abcd', 'deep', datetime('now'), datetime('now', '+1 hour'))")
    cases = [(f"sqlite:///{tmp_path}/a-file/x.sqlite", 2, "a-file is a file, not a directory"),
             (f"sqlite:///{notes}", 2, "file is not a database"),
             ("nosuchdialect://x/y", 2, "cannot open database nosuchdialect://x/y"),
             (held, 3, "already being crawled")]
    for db, code, message in cases:
        seen = []
        for writer in ("0", "1"):
            result = cli("crawl", "--base-url", "http://127.0.0.1:9", "--db", db, check=False,
                         env={"PORTAL_ARCHIVE_WRITE_PROCESS": writer})
            seen.append((result.returncode, result.stdout, result.stderr.strip()))
        assert seen[0] == seen[1], (db, seen)
        returncode, stdout, stderr = seen[1]
        assert returncode == code and stdout == "" and len(stderr.splitlines()) == 1, (db, seen[1])
        assert message in stderr, (db, stderr)
    assert query(held, "select count(*) from crawl_runs")[0][0] == 0

    site = start_site(tmp_path / "site", 20, seed=57)
    db = new_database(request, tmp_path)
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env={"PORTAL_ARCHIVE_REQUESTS_PER_DAY": "1000"})
        spent = query(db, "select requests from crawl_runs")[0][0]
        budget = {"PORTAL_ARCHIVE_REQUESTS_PER_DAY": str(spent)}
        for writer in ("0", "1"):
            out = cli("crawl", "--base-url", site.url, "--db", db, env={**budget, "PORTAL_ARCHIVE_WRITE_PROCESS": writer})
            assert "skipped: request budget spent" in out.stdout
        assert [status for status, in query(db, "select status from crawl_runs order by id")] == \
            ["succeeded", "skipped", "skipped"]
        assert query(db, "select count(*) from leases")[0][0] == 0
    finally:
        site.server.stop()
