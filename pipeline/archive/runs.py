"""The crawl-runs table: a run is opened before the crawl and closed with its counts."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from pipeline import stats as stats_keys
from pipeline.archive.db import session_scope
from pipeline.archive.models import CrawlRun
from pipeline.archive.outcomes import Written

# Crawler stats keys → crawl_runs columns (the sums are pipeline.stats').
COUNTED = {
    stats_keys.archive(Written.NEW): "articles_new",
    stats_keys.archive(Written.TAKEN_DOWN): "taken_down",
    stats_keys.archive(Written.RESTORED): "restored",
    stats_keys.DUPLICATES: "duplicates",
    stats_keys.archive(Written.QUARANTINED): "quarantined",
    stats_keys.archive(Written.FETCH_FAILED): "fetch_failures",
    stats_keys.RESPONSES: "pages_fetched",
    stats_keys.REQUESTS: "requests",  # every request sent to the portal: the request budget's ledger
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def start_run(engine: Engine, kind: str, base_url: str, options: dict, job: str | None = None,
              backfill_id: int | None = None, owner: tuple[str, int, str | None] | None = None) -> int:
    """Open a run. `owner` (host, pid, process start) is the process answerable for it, written with
    the row: a run is never `running` without one, or a kill before it was claimed would leave it
    running until its heartbeat went stale instead of being seen dead at once (claim_run)."""
    hostname, pid, started = owner or (None, None, None)
    stamp = now()
    return _add_run(engine, kind=kind, job=job, status="running", started_at=stamp, base_url=base_url,
                    options=options, backfill_id=backfill_id, hostname=hostname, pid=pid, pid_started=started,
                    heartbeat_at=stamp if owner else None)


def record_skipped(engine: Engine, kind: str, base_url: str, job: str | None, why: str) -> int:
    """A slot that did not run, written closed in one transaction: never `running`, so never taken
    for a run whose process died."""
    stamp = now()
    return _add_run(engine, kind=kind, job=job, status="skipped", started_at=stamp, finished_at=stamp,
                    base_url=base_url, options={}, error=why)


def _add_run(engine: Engine, **columns) -> int:
    with session_scope(engine) as session:
        run = CrawlRun(stats={}, health={}, **columns)
        session.add(run)
        session.flush()
        return run.id


def finish_run_patiently(engine: Engine, run_id: int, status: str, stats: dict, error: str | None,
                         attempts: int = 10, wait_seconds: float = 3.0, health: dict | None = None) -> CrawlRun:
    """finish_run, tried again while the database is unavailable (locked, restarting).

    The crawl may have stopped precisely because the database went away; its
    run should still end up `failed` with the reason rather than `running`.
    """
    for attempt in range(attempts):
        try:
            return finish_run(engine, run_id, status, stats, error, health)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(wait_seconds)
    raise AssertionError("unreachable")


def claim_run(engine: Engine, run_id: int, hostname: str, pid: int, started: str | None = None) -> None:
    """Record which process works on the run (and when it started, so a reused pid is not taken
    for it), so a dead one can be told from a live one."""
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        run.hostname, run.pid, run.pid_started, run.heartbeat_at = hostname, pid, started, now()


def close_run(engine: Engine, run_id: int, status: str, error: str | None) -> bool:
    """Close a run from outside its process (timeout, kill); False if it had closed itself."""
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.status != "running":
            return False
        run.status, run.error, run.finished_at = status, error, now()
        return True


def finish_run(engine: Engine, run_id: int, status: str, stats: dict, error: str | None = None,
               health: dict | None = None) -> CrawlRun:
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        run.status = status
        run.finished_at = now()
        run.error = error
        for key, column in COUNTED.items():
            setattr(run, column, int(stats.get(key, 0)))
        run.unchanged = stats_keys.unchanged(stats)
        run.articles_seen = stats_keys.articles_seen(stats)
        run.versions_written = stats_keys.versions_written(stats)
        run.stats = {k: v if isinstance(v, (int, float, str)) else str(v) for k, v in stats.items()}
        if health is not None:
            run.health = health
        return run
