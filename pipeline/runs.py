"""The crawl-runs table: a run is opened before the crawl and closed with its counts."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from pipeline.db import session_scope
from pipeline.models import CrawlRun

# Crawler stats keys → crawl_runs columns.
COUNTED = {
    "archive/new": "articles_new",
    "archive/unchanged": "unchanged",
    "archive/taken_down": "taken_down",
    "archive/restored": "restored",
    "archive/duplicates": "duplicates",
    "archive/quarantined": "quarantined",
    "archive/fetch_failed": "fetch_failures",
    "downloader/response_count": "pages_fetched",
    # Every request sent to the portal (Scrapy's and the revalidator's): the budget's ledger.
    "downloader/request_count": "requests",
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def start_run(engine: Engine, kind: str, base_url: str, options: dict, job: str | None = None,
              backfill_id: int | None = None, status: str = "running") -> int:
    with session_scope(engine) as session:
        run = CrawlRun(kind=kind, job=job, status=status, started_at=now(), base_url=base_url,
                       options=options, stats={}, health={}, backfill_id=backfill_id)
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


def claim_run(engine: Engine, run_id: int, hostname: str, pid: int) -> None:
    """Record which process works on the run, so a dead one can be told from a live one."""
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        run.hostname, run.pid, run.heartbeat_at = hostname, pid, now()


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
        run.unchanged = int(stats.get("archive/unchanged", 0)) + int(stats.get("archive/not_modified", 0))
        run.articles_seen = run.unchanged + sum(int(stats.get(f"archive/{k}", 0))
                                                for k in ("new", "edited", "reextracted", "restored"))
        run.versions_written = sum(int(stats.get(f"archive/{k}", 0))
                                   for k in ("new", "edited", "reextracted", "taken_down", "restored"))
        run.stats = {k: v if isinstance(v, (int, float, str)) else str(v) for k, v in stats.items()}
        if health is not None:
            run.health = health
        return run
