"""The crawl lease's takeover from a dead holder on the same host (issue 21): the pid and the process
start decide, so a reused pid is not taken for the holder, a live holder still blocks, and another
host's holder is left to its expiry."""
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from ops.lease import (LeaseHeld, acquire, current_holder, holder_id, mark_abandoned, process_start, release,
                       try_acquire)
from pipeline.archive import runs
from pipeline.archive.db import open_archive
from tests.conftest import new_database, query

pytestmark = pytest.mark.archive
HOUR = timedelta(hours=1)
HOST = socket.gethostname()


@pytest.fixture
def engine(request, tmp_path):
    engine = open_archive(new_database(request, tmp_path), auto_upgrade=True)
    yield engine
    engine.dispose()


def hold(engine, pid: int, started: str | None, host: str = HOST, job: str = "backfill") -> str:
    """Write a lease row for someone else's process, an hour from expiring, and a run it works on."""
    holder = f"{host}:{pid}:deadbeef"
    query(engine.url.render_as_string(hide_password=False), "insert into leases "
          "(name, holder, holder_started, job, acquired_at, expires_at) "
          "values ('crawl', ?, ?, ?, datetime('now'), datetime('now', '+1 hour'))", holder, started, job)
    run_id = runs.start_run(engine, "backfill", "http://127.0.0.1:1", {})
    runs.claim_run(engine, run_id, host, pid, started)
    return holder


def run_status(engine, run_id: int = 1) -> str:
    return query(engine.url.render_as_string(hide_password=False), "select status from crawl_runs where id=?",
                 run_id)[0][0]


@pytest.fixture
def stranger():
    """A live process that is not the holder: its pid is alive, its start is its own."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_holder_blocks(engine, stranger):
    hold(engine, stranger.pid, process_start(stranger.pid))
    assert not try_acquire(engine, holder_id(), "crawl", HOUR)
    with pytest.raises(LeaseHeld, match=f"pid {stranger.pid}"):
        acquire(engine, holder_id(), "crawl", HOUR)
    assert run_status(engine) == "running"


def test_a_dead_holder_on_this_host_is_taken_over_at_once(engine, caplog):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start(proc.pid)
    proc.wait()  # dead and reaped
    hold(engine, proc.pid, started)
    me = holder_id()
    with caplog.at_level("WARNING", logger="ops.lease"):
        assert try_acquire(engine, me, "crawl", HOUR)
    assert current_holder(engine).holder == me
    assert run_status(engine) == "abandoned"
    error = query(engine.url.render_as_string(hide_password=False), "select error from crawl_runs")[0][0]
    assert f"taken over by pid {os.getpid()}" in error
    assert any("taken over at once" in r.getMessage() and "run 1 marked abandoned" in r.getMessage()
               for r in caplog.records)


def test_a_run_killed_as_soon_as_it_was_opened_is_seen_dead_at_once(engine):
    # A run is written with its owner: killed before it could do anything else, it is not left
    # `running` until its heartbeat goes stale (an hour here), the next command sees it dead.
    code = ("import os, signal, sys; from ops.lease import this_process; from pipeline.archive import runs; "
            "from pipeline.archive.db import open_archive; "
            "runs.start_run(open_archive(sys.argv[1], auto_upgrade=False), 'crawl', 'http://127.0.0.1:1', {}, owner=this_process()); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    killed = subprocess.run([sys.executable, "-c", code, engine.url.render_as_string(hide_password=False)])
    assert killed.returncode == -signal.SIGKILL
    assert run_status(engine) == "running"
    assert mark_abandoned(engine, stale_after=HOUR) == [1]
    assert run_status(engine) == "abandoned"
    # One opened by a live process stays its own.
    mine = runs.start_run(engine, "crawl", "http://127.0.0.1:1", {}, owner=(HOST, os.getpid(), process_start(os.getpid())))
    assert mark_abandoned(engine, stale_after=HOUR) == []
    assert run_status(engine, mine) == "running"


def test_a_reused_pid_is_not_the_holder(engine, stranger):
    # The holder's pid now belongs to a live process that started at another time: the holder is gone.
    mine = process_start(stranger.pid)
    boot_and_namespace, ticks = mine.rsplit(" ", 1)
    hold(engine, stranger.pid, f"{boot_and_namespace} {int(ticks) - 1}")
    assert try_acquire(engine, holder_id(), "crawl", HOUR)
    assert run_status(engine) == "abandoned"


def test_a_holder_recorded_in_another_boot_or_namespace_waits_for_its_expiry(engine, stranger):
    _boot, namespace, ticks = process_start(stranger.pid).split(" ")
    hold(engine, stranger.pid, f"00000000-0000-0000-0000-000000000000 {namespace} {int(ticks) - 1}")
    assert not try_acquire(engine, holder_id(), "crawl", HOUR)


def test_another_hosts_holder_waits_for_its_expiry(engine):
    hold(engine, 4242, None, host="otherhost")
    assert not try_acquire(engine, holder_id(), "crawl", HOUR)
    assert run_status(engine) == "running"


def test_a_holder_without_a_start_is_judged_by_its_pid_as_before(engine, stranger):
    hold(engine, stranger.pid, None)
    assert not try_acquire(engine, holder_id(), "crawl", HOUR)


def test_our_own_lease_records_our_start_and_is_released(engine):
    me = holder_id()
    acquire(engine, me, "crawl", HOUR)
    url = engine.url.render_as_string(hide_password=False)
    assert query(url, "select holder_started from leases")[0][0] == process_start(os.getpid())
    release(engine, me)
    assert current_holder(engine) is None
