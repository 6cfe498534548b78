"""Run health: coverage, fallback and quarantine rates on every run; degraded runs; notifications."""
import json
import os
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.archive.health import Thresholds, judge, run_health
from replica import DriftPlan, ReplicaServer, generate, save_state
from tests.conftest import cli, new_database, query, spawn_cli, start_site, wait_for, write_config

pytestmark = pytest.mark.archive

QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}


def stats(ok=100, rejected=0, fallback=0, **fields):
    counts = {"clean/ok": ok, "clean/rejected": rejected, "clean/extraction/fallback": fallback,
              "clean/extraction/profile": ok + rejected - fallback}
    for name in ("title", "published_at", "body_text", "channel", "lede", "editor", "source"):
        counts[f"clean/field/{name}"] = fields.get(name, ok)
    return counts


def test_rates_and_coverage_from_the_cleaning_counts():
    health = run_health(stats(ok=90, rejected=10, fallback=30, editor=45))
    assert health["article_pages"] == 100 and health["fallback_rate"] == 0.3
    assert health["quarantine_rate"] == 0.1 and health["coverage"]["editor"] == 0.5
    assert health["coverage"]["title"] == 1.0 and health["coverage"]["tags"] == 0.0


@pytest.mark.parametrize("counts, degraded", [
    (stats(), []),
    (stats(fallback=6), ["fallback rate"]),
    (stats(ok=94, rejected=6), ["quarantine rate"]),
    (stats(source=80), ["field coverage"]),
    (stats(ok=10, fallback=10), []),  # too few pages to judge
])
def test_thresholds(counts, degraded):
    reasons = judge(run_health(counts), Thresholds())
    assert [r.split(" ")[0] + " " + r.split(" ")[1] for r in reasons] == degraded


def test_a_healthy_crawl_records_its_health_and_succeeds(request, tmp_path):
    site = start_site(tmp_path / "site", 120, seed=23)
    db_file = new_database(request, tmp_path)
    try:
        out = cli("crawl", "--base-url", site.url, "--db", db_file, env=QUIET).stdout
    finally:
        site.server.stop()
    assert "run 1 succeeded" in out and "fallback 0.0%" in out
    health = json.loads(query(db_file, "select health from crawl_runs")[0][0])
    assert health["article_pages"] == 120 and health["fallback"] == 0 and health["degraded"] == []
    assert set(health["coverage"].values()) <= {1.0} | {health["coverage"]["tags"], health["coverage"]["origin_source"]}
    status = json.loads(cli("status", "--db", db_file, "--json").stdout)
    assert status["last_manual_run"]["health"]["fallback_rate"] == 0.0


# The real CLI with one spider method broken, as a bug would break it: related links now raise.
BROKEN_FOLLOW = ("import sys, spiders.portal as p; p.PortalSpider._follow = lambda self, article: 1 / 0; "
                 "from ops.cli import main; sys.argv[0] = 'portal-archive'; main()")


def test_a_run_whose_callbacks_raised_fails_and_says_why(request, tmp_path):
    """Scrapy logs an exception a callback raised and goes on; the pages' work is undone and no other
    figure shows it. Here every article is archived before its links raise, and the run still fails."""
    site = start_site(tmp_path / "site", 20, seed=31)
    db = new_database(request, tmp_path)
    try:
        done = subprocess.run([sys.executable, "-c", BROKEN_FOLLOW, "crawl", "--base-url", site.url, "--db", db],
                              env={**os.environ, **QUIET}, capture_output=True, text=True, timeout=300)
    finally:
        site.server.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "run 1 failed" in done.stdout and "20 page callbacks raised (ZeroDivisionError 20)" in done.stdout
    assert query(db, "select status from crawl_runs")[0][0] == "failed"
    assert "a bug in the crawl" in query(db, "select error from crawl_runs")[0][0]


def test_a_run_that_archives_none_of_the_new_articles_fails(request, tmp_path):
    """Every new article's page is broken: the first run fails; the next, which knows them, does not."""
    save_state(generate(30, seed=29, defects={"bad_bytes": 30}), tmp_path / "site")
    server = ReplicaServer(tmp_path / "site").start()
    db = db_file = new_database(request, tmp_path, "a")
    env = {**QUIET, "PORTAL_ARCHIVE_RETRY_TIMES": "0"}
    try:
        first = cli("crawl", "--base-url", server.url, "--db", db, check=False, env=env)
        second = cli("crawl", "--base-url", server.url, "--db", db, check=False, env=env)
    finally:
        server.stop()
    assert first.returncode == 1
    assert "run 1 failed" in first.stdout and "listed 30 articles new to the archive" in first.stdout
    # Now they are known to the archive (quarantined): nothing new was listed, and pages broken
    # before are no news either, so they neither fail nor degrade every later run.
    assert second.returncode == 0 and "run 2 succeeded" in second.stdout
    assert [s for (s,) in query(db_file, "select status from crawl_runs order by id")] == ["failed", "succeeded"]
    health = json.loads(query(db_file, "select health from crawl_runs where id = 2")[0][0])
    assert health["quarantined"] == health["known_broken"] == 30 and health["quarantine_rate"] == 0.0


class Recorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/archive?token=secret", Recorder.received
    server.shutdown()
    server.server_close()


CONFIG = """
base_url = "{base_url}"
log_level = "INFO"
lease_ttl_seconds = 10
notify_url = "{url}"
notify_command = "{command}"
[daemon]
stop_grace_seconds = 20
misfire_grace_seconds = 30
[daemon.jobs.incremental]
every_seconds = 3
walk = "incremental"
revisit = "due"
timeout_seconds = 120
"""


@pytest.mark.slow
def test_the_daemon_tells_the_command_and_the_url_about_a_degraded_run(request, tmp_path, recorder):
    url, received = recorder
    save_state(generate(200, seed=31), tmp_path / "site")
    site = ReplicaServer(tmp_path / "site", drift=DriftPlan(0.3, seed=7)).start()
    told = tmp_path / "told.json"
    command = shlex.join([sys.executable, "-c", f"import sys; open({str(told)!r}, 'wb').write(sys.stdin.buffer.read())"])
    config = write_config(tmp_path / "c.toml", CONFIG.format(base_url=site.url, url=url,
                                                             command=command.replace("\\", "\\\\").replace('"', '\\"')))
    db_file = new_database(request, tmp_path)
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log:
        proc = spawn_cli("--config", str(config), "daemon", "--db", db_file, log=log)
        try:
            wait_for(lambda: received, 120, what="the notification POST")
            wait_for(lambda: query(db_file, "select count(*) from crawl_runs where status = 'succeeded'")[0][0],
                     120, what="a healthy run after the degraded one")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            site.stop()
    content_type, summary = received[0]
    assert content_type.startswith("application/json")
    assert summary["status"] == "degraded" and summary["job"] == "incremental"
    assert 0.2 < summary["health"]["fallback_rate"] < 0.4
    assert any("fallback rate" in reason for reason in summary["degraded"])
    assert summary["articles_new"] == 200 and summary["id"] and summary["requests"] >= 200
    assert json.loads(told.read_bytes()) == summary
    # Healthy runs are not told; the token in the URL never reaches the log.
    assert all(s["status"] == "degraded" for _, s in received)
    log_text = log_path.read_text()
    assert "notify URL http://127.0.0.1" in log_text and "secret" not in log_text


def test_pages_quarantined_before_are_not_counted_again():
    health = run_health(stats(ok=94, rejected=6), known_broken=6)
    assert health["quarantine_rate"] == 0.0 and judge(health, Thresholds()) == []
