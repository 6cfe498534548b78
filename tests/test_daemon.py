"""The daemon against the replica: schedule, lease, signals, abandoned runs (issue 3)."""
import json
import signal
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import cli, export, new_database, query, spawn_cli, start_site, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.archive]

CONFIG = """
# No request budget (conftest.FAST): every live article is revisited at every run.
log_level = "WARNING"
lease_ttl_seconds = {ttl}
[daemon]
stop_grace_seconds = {grace}
misfire_grace_seconds = 30
[daemon.jobs.incremental]
every_seconds = {every}
walk = "incremental"
revisit = "due"
timeout_seconds = 120
"""


def runs(db_file, where="1=1"):
    return query(db_file, f"select id, job, status, started_at, finished_at, error, pid from crawl_runs where {where} order by id")


def finished_after(db_file, run_id, status="succeeded"):
    return lambda: query(db_file, "select id from crawl_runs where id > ? and status = ?", run_id, status)


@pytest.fixture
def small_site(tmp_path):
    site = start_site(tmp_path / "site", 200, seed=3)
    yield site
    site.server.stop()


def daemon(config, db, log, *options: str):
    return spawn_cli("--config", str(config), "daemon", "--db", db, *options, log=log)


def stop(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def test_daemon_keeps_the_archive_current_and_status_reports_it(request, tmp_path, small_site):
    db = db_file = new_database(request, tmp_path, "a")
    config = write_config(tmp_path / "c.toml",
                          f'base_url = "{small_site.url}"\n' + CONFIG.format(ttl=10, grace=20, every=3))
    with open(tmp_path / "daemon.log", "w") as log:
        proc = daemon(config, db, log)
        try:
            first = wait_for(lambda: query(db_file, "select min(id) from crawl_runs where status='succeeded'")[0][0],
                             90, what="the first scheduled run")
            report = small_site.mutate(seed=5, edits=6, takedowns=3, republish=2, new=4)
            mutated_at = query(db_file, "select max(id) from crawl_runs")[0][0]
            wait_for(finished_after(db_file, mutated_at), 90, what="a run after the portal changed")
        finally:
            assert stop(proc) == 0
    rows = export(db, "--all-versions")
    by_aid = {}
    for r in rows:
        by_aid.setdefault(r["aid"], []).append(r["change"])
    edited = {int(a) for a in report["edited"]}
    taken = {int(a) for a in report["taken_down"]}
    assert {a for a, c in by_aid.items() if c == ["created", "edited"]} == edited
    assert {a for a, c in by_aid.items() if c == ["created", "taken_down"]} == taken
    assert set(report["new"]) | {int(a) for a in report["republished"]} <= set(by_aid)
    assert len(rows) == 200 + len(edited) + len(taken) + len(report["new"]) + len(report["republished"])
    assert first
    status = cli("status", "--db", db)
    assert status.returncode == 0
    assert "incremental: next" in status.stdout and "succeeded" in status.stdout
    assert f"{len(taken)} taken down" in status.stdout
    log_text = (tmp_path / "daemon.log").read_text()
    assert "daemon started" in log_text and "daemon stopped" in log_text


def test_two_daemons_never_crawl_at_once_and_the_survivor_takes_over(request, tmp_path):
    site = start_site(tmp_path / "site", 800, seed=4)
    db = db_file = new_database(request, tmp_path, "a")
    cli("db", "upgrade", "--db", db)
    config = write_config(tmp_path / "c.toml", f'base_url = "{site.url}"\n' + CONFIG.format(ttl=4, grace=10, every=1))
    logs = [open(tmp_path / f"d{i}.log", "w") for i in range(2)]
    procs = [daemon(config, db, logs[i]) for i in range(2)]
    try:
        wait_for(lambda: query(db_file, "select count(*) from crawl_runs where status='succeeded'")[0][0] >= 2,
                 120, what="two scheduled runs")
        # One daemon schedules, the other waits on standby.
        wait_for(lambda: any("standby: another daemon schedules this archive" in (tmp_path / f"d{i}.log").read_text()
                             for i in range(2)), 30, what="a daemon on standby")
        # Kill the daemon that holds the lease while it crawls: once its crawl process has claimed the
        # run (a daemon answers for the runs it opens until then). Crawls here take about a second.
        daemons = {p.pid for p in procs}
        running = wait_for(lambda: [r for r in query(db_file, "select id, pid from crawl_runs where status='running'")
                                    if r[1] not in daemons],
                           60, interval=0.02, what="a crawl under way")[0][0]
        holder = query(db_file, "select holder from leases where name='crawl'")[0][0]
        holder_pid = int(holder.split(":")[1])
        victim = next(p for p in procs if p.pid == holder_pid)
        survivor = next(p for p in procs if p is not victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.time()
        wait_for(lambda: query(db_file, "select status from crawl_runs where id=?", running)[0][0] == "abandoned",
                 60, what="the killed daemon's run marked abandoned")
        wait_for(finished_after(db_file, running), 90, what="the survivor's next run")
        assert time.time() - killed_at >= 0  # the takeover happened after the kill
        # Only one crawl at a time: no two real runs overlap.
        spans = [(s, f) for _, _, st, s, f, _, _ in runs(db_file) if st in ("succeeded", "abandoned", "interrupted")]
        spans.sort()
        for (s1, f1), (s2, _f2) in zip(spans, spans[1:]):
            assert f1 is not None and f1 <= s2, (s1, f1, s2)
        assert stop(survivor) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
        site.server.stop()


def test_sigterm_mid_crawl_interrupts_the_run_and_sigkill_leaves_it_abandoned(request, tmp_path):
    site = start_site(tmp_path / "site", 1500, seed=5)
    db = db_file = new_database(request, tmp_path, "a")
    cli("db", "upgrade", "--db", db)
    env = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING", "PORTAL_ARCHIVE_BATCH_SIZE": "50",
           "PORTAL_ARCHIVE_LEASE_TTL_SECONDS": "3"}
    try:
        # SIGTERM: Scrapy stops gracefully, the run closes itself as interrupted.
        proc = spawn_cli("crawl", "--base-url", site.url, "--db", db, env=env)
        wait_for(lambda: query(db_file, "select count(*) from article_versions")[0][0] >= 100, 60,
                 interval=0.05, what="a crawl under way")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 1
        assert runs(db_file)[-1][2] == "interrupted"
        # SIGKILL: the run stays "running" until the next start marks it abandoned.
        proc = spawn_cli("crawl", "--base-url", site.url, "--db", db, env=env)
        wait_for(lambda: query(db_file, "select count(*) from crawl_runs where status='running' and pid is not null")[0][0],
                 60, interval=0.05, what="a second crawl under way")
        n = query(db_file, "select count(*) from article_versions")[0][0]
        wait_for(lambda: query(db_file, "select count(*) from article_versions")[0][0] > n, 60, interval=0.05,
                 what="the second crawl writing")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = runs(db_file)[-1]
        assert killed[2] == "running"
        # The lease of a killed process expires; the next crawl waits it out, marks the run abandoned and
        # completes the work without writing any version twice.
        result = wait_for(lambda: (r := cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "all",
                                            env=env, check=False)).returncode != 3 and r, 120, interval=2,
                          what="the lease to expire")
        assert result.returncode == 0, result.stderr
        assert query(db_file, "select status from crawl_runs where id=?", killed[0])[0][0] == "abandoned"
        rows = export(db, "--all-versions")
        assert len(rows) == len({r["aid"] for r in rows}) == 1500
        expected = site.expected()
        assert all(r["title"] == expected[r["aid"]]["title"] and r["body"] == expected[r["aid"]]["body"]
                   for r in rows)
    finally:
        site.server.stop()


def test_a_daemon_job_skips_its_slot_while_a_manual_crawl_holds_the_lease(request, tmp_path, small_site):
    db = db_file = new_database(request, tmp_path, "a")
    cli("db", "upgrade", "--db", db)
    query(db_file, "insert into leases (name, holder, job, acquired_at, expires_at) values "
                   "('crawl', 'otherhost:4242:abcd', 'crawl', datetime('now'), datetime('now', '+1 hour'))")
    config = write_config(tmp_path / "c.toml", f'base_url = "{small_site.url}"\n' + CONFIG.format(ttl=5, grace=5, every=1))
    with open(tmp_path / "d.log", "w") as log:
        proc = daemon(config, db, log)
        try:
            skipped = wait_for(lambda: query(db_file, "select error from crawl_runs where status='skipped'"), 60,
                               what="a skipped slot")
        finally:
            assert stop(proc) == 0
    assert "lease held by job 'crawl' on host otherhost, pid 4242" in skipped[0][0]
    assert query(db_file, "select count(*) from crawl_runs where status != 'skipped'")[0][0] == 0


def test_a_manual_crawl_refuses_while_the_lease_is_held(request, tmp_path, small_site):
    db = db_file = new_database(request, tmp_path, "a")
    cli("db", "upgrade", "--db", db)
    query(db_file, "insert into leases (name, holder, job, acquired_at, expires_at) values "
                   "('crawl', 'otherhost:4242:abcd', 'deep', datetime('now'), datetime('now', '+1 hour'))")
    result = cli("crawl", "--base-url", small_site.url, "--db", db, check=False)
    assert result.returncode == 3
    assert "already being crawled" in result.stderr and "otherhost" in result.stderr and "4242" in result.stderr
    assert "'deep'" in result.stderr
    assert query(db_file, "select count(*) from crawl_runs")[0][0] == 0


def test_print_schedule_shows_next_runs(tmp_path):
    config = write_config(tmp_path / "c.toml", '[daemon]\ntimezone = "Asia/Shanghai"\n'
                          '[daemon.jobs.nightly]\ncron = "30 2 * * *"\nwalk = "full"\nrevisit = "all"\n')
    out = cli("--config", str(config), "daemon", "--print-schedule").stdout
    assert out.startswith("nightly: ") and out.count("02:30:00 CST") == 5


def daemon_until(config, db, log_path, predicate, timeout: float, what: str, *options: str) -> None:
    """Run the daemon until predicate() holds (bounded by timeout), then stop it; it must exit cleanly."""
    with open(log_path, "w") as log:
        proc = daemon(config, db, log, *options)
        try:
            wait_for(predicate, timeout, what=what)
        finally:
            assert stop(proc) == 0


def store_job(config, db, log_path) -> None:
    """Start the daemon until it has stored its job (the first slot is far ahead: nothing runs), then stop it."""
    daemon_until(config, db, log_path, lambda: "daemon started" in log_path.read_text(), 60,
                 "the daemon to store its job")


@contextmanager
def job_store(db: str):
    """APScheduler's own job store on the test archive, which keeps a job's next slot both in the column the
    scheduler queries and in the stored job."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(db)
    try:
        store = SQLAlchemyJobStore(engine=engine, metadata=MetaData())
        store.start(None, "default")
        yield store
    finally:
        engine.dispose()


def move_next_slot(db: str, job_id: str, back: timedelta) -> None:
    """Stand for a daemon that was down while slots passed: the stored job's next slot moves `back` into the past."""
    with job_store(db) as store:
        job = store.lookup_job(job_id)
        job.next_run_time = datetime.now(timezone.utc) - back
        store.update_job(job)


def stored_job(db: str, job_id: str):
    with job_store(db) as store:
        return store.lookup_job(job_id)


def test_missed_slots_run_once_within_the_grace_period_and_are_recorded_beyond_it(request, tmp_path, small_site):
    """The slots are set in the job store, not waited for, so how late a slot is does not depend on how
    long the daemon takes to start: an hourly slot missed by 30 minutes is far beyond a 10-minute grace,
    and well within an hour's."""
    db = db_file = new_database(request, tmp_path, "a")

    def conf(every, grace):
        return write_config(tmp_path / "c.toml", f'base_url = "{small_site.url}"\n' + CONFIG.format(
            ttl=5, grace=5, every=every).replace("misfire_grace_seconds = 30", f"misfire_grace_seconds = {grace}"))

    # Beyond the grace period: an hourly job whose slots 90 and 30 minutes ago passed while no daemon ran.
    config = conf(3600, 600)
    store_job(config, db, tmp_path / "d1.log")
    assert query(db_file, "select count(*) from crawl_runs")[0][0] == 0
    move_next_slot(db, "incremental", timedelta(minutes=90))
    skipped = lambda: query(db_file, "select 1 from crawl_runs where status='skipped'")  # noqa: E731
    daemon_until(config, db, tmp_path / "d2.log", skipped, 60, "a missed slot recorded", "--log-json")
    recorded = query(db_file, "select status, error from crawl_runs order by id")
    assert [status for status, _ in recorded] == ["skipped"], recorded  # recorded once, and nothing crawled
    assert "missed its slot" in recorded[0][1] and "older than the 600 s grace period" in recorded[0][1]
    events = [json.loads(line) for line in (tmp_path / "d2.log").read_text().splitlines() if line.startswith("{")]
    assert any("missed its slot" in e["message"] for e in events)

    # Within the grace period: the same hourly job, the same slots missed, and only the grace raised to an hour in
    # the config (the restarted daemon applies it to the stored job).
    config = conf(3600, 3600)
    store_job(config, db, tmp_path / "d3.log")
    before = query(db_file, "select max(id) from crawl_runs")[0][0]
    assert query(db_file, "select count(*) from crawl_runs where id > ?", before)[0][0] == 0
    move_next_slot(db, "incremental", timedelta(minutes=90))
    daemon_until(config, db, tmp_path / "d4.log",
                 lambda: query(db_file, "select 1 from crawl_runs where id > ? and status='succeeded'", before),
                 90, "the coalesced run")
    # Two missed slots, one run; the next slot is half an hour away, so nothing else can have started.
    assert [s for (s,) in query(db_file, "select status from crawl_runs where id > ? order by id", before)] == \
        ["succeeded"]


def test_a_changed_grace_period_reaches_the_stored_job_on_restart(request, tmp_path, small_site):
    """Only the grace changes, not the trigger: the restarted daemon updates the stored job in place, keeping
    the slot it missed (so the slot is still judged), and judges it by the new grace, which the record quotes.
    The grace goes down, so a job that kept its old hour would run this slot instead of skipping it."""
    db = db_file = new_database(request, tmp_path, "a")

    def conf(grace):
        return write_config(tmp_path / "c.toml", f'base_url = "{small_site.url}"\n' + CONFIG.format(
            ttl=5, grace=5, every=3600).replace("misfire_grace_seconds = 30", f"misfire_grace_seconds = {grace}"))

    store_job(conf(3600), db, tmp_path / "d1.log")
    assert stored_job(db, "incremental").misfire_grace_time == 3600
    # Slots 90 and 30 minutes ago passed while the daemon was down: 30 minutes late is within an hour,
    # beyond 15 minutes.
    move_next_slot(db, "incremental", timedelta(minutes=90))
    missed_slot = stored_job(db, "incremental").next_run_time
    config = conf(900)
    skipped = lambda: query(db_file, "select 1 from crawl_runs where status='skipped'")  # noqa: E731
    daemon_until(config, db, tmp_path / "d2.log", skipped, 60, "the missed slot recorded")
    recorded = query(db_file, "select status, error from crawl_runs order by id")
    assert [status for status, _ in recorded] == ["skipped"], recorded  # nothing crawled
    assert "older than the 900 s grace period" in recorded[0][1]
    job = stored_job(db, "incremental")
    assert job.misfire_grace_time == 900
    # Not rescheduled from the restart: the hourly slots still follow the one that was missed.
    assert job.next_run_time == missed_slot + timedelta(hours=2)


def test_sigterm_stops_the_daemon_and_interrupts_its_crawl(request, tmp_path):
    site = start_site(tmp_path / "site", 1500, seed=6)
    db = db_file = new_database(request, tmp_path, "a")
    config = write_config(tmp_path / "c.toml", f'base_url = "{site.url}"\nbatch_size = 50\n'
                          + CONFIG.format(ttl=5, grace=30, every=1))
    try:
        with open(tmp_path / "d.log", "w") as log:
            proc = daemon(config, db, log)
            wait_for(lambda: query(db_file, "select count(*) from article_versions")[0][0] >= 100, 60,
                     interval=0.05, what="a crawl under way")
            assert stop(proc) == 0
        last = runs(db_file)[-1]
        assert last[2] == "interrupted", last
        assert query(db_file, "select count(*) from crawl_runs where status='running'")[0][0] == 0
        assert cli("verify", "--db", db, check=False).returncode == 0
    finally:
        site.server.stop()


def test_status_fails_when_the_last_run_failed(request, tmp_path):
    db = new_database(request, tmp_path)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    result = cli("crawl", "--base-url", dead, "--db", db, check=False,
                 env={"PORTAL_ARCHIVE_RETRY_TIMES": "0", "PORTAL_ARCHIVE_LOG_LEVEL": "ERROR"})
    assert result.returncode == 1 and "no page could be fetched" in result.stdout
    status = cli("status", "--db", db, check=False)
    assert status.returncode == 1
    assert "failed or abandoned" in status.stdout and "no page could be fetched" in status.stdout
